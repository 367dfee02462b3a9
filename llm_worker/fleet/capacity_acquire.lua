-- One ask for the capacity of one LLM call: all limits at once, or none.
-- KEYS: 1 slots, 2 waiting, 3 waiting:seen, 4 requests bucket, 5 tokens bucket, 6 cooldown,
--       7 usage window, 8 slot shares, 9 share slots, 10 waiter shares, 11 share waiters,
--       12 the share's quota for today ('' when none)
-- ARGV: 1 now ms, 2 lease, 3 lease ms, 4 slot limit, 5 rpm, 6 tpm, 7 token estimate,
--       8 priority, 9 poll ms, 10 waiter stale ms, 11 share ('' when none),
--       12 slots one share may hold (0: no limit), 13 waiters one share may have,
--       14 a share's daily token budget (0: none), 15 ms until today's budget resets,
--       16 score scale (a priority's weight in the waiting order),
--       17 1 when calls in flight are counted (a fleet or a per-share cap), else 0
-- Returns {granted, wait ms, reason, sent back}: sent back = 1 when the job should go
-- back to the broker now instead of waiting on its thread.
local now = tonumber(ARGV[1])
local lease = ARGV[2]
local lease_ms = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local rpm = tonumber(ARGV[5])
local tpm = tonumber(ARGV[6])
local cost = tonumber(ARGV[7])
local priority = tonumber(ARGV[8])
local poll = tonumber(ARGV[9])
local share = ARGV[11]
local share_limit = tonumber(ARGV[12])
local share_waiters = tonumber(ARGV[13])
local budget = tonumber(ARGV[14])
local scale = tonumber(ARGV[16])
local counted = ARGV[17] == '1'

local function held_by(who)
    if who == '' then return 0 end
    return tonumber(redis.call('hget', KEYS[9], who) or '0')
end

local function forget(id)
    forget_waiter(KEYS[2], KEYS[3], KEYS[10], KEYS[11], id)
end

if budget > 0 and KEYS[12] ~= '' then
    if tonumber(redis.call('get', KEYS[12]) or '0') >= budget then
        forget(lease)
        return {0, math.max(1, tonumber(ARGV[15])), 'quota', 1}
    end
end
if counted then
    for _, id in ipairs(redis.call('zrangebyscore', KEYS[1], '-inf', now)) do
        unhold_slot(KEYS[8], KEYS[9], id)
    end
    redis.call('zremrangebyscore', KEYS[1], '-inf', now)
end
-- The waiting order: priority first, then the share with fewer calls in flight.
local held = held_by(share)
local score = priority * scale + math.min(held, scale - 1)

local function wait(ms, reason)
    if share ~= '' and not redis.call('zscore', KEYS[2], lease) then
        if tonumber(redis.call('hget', KEYS[11], share) or '0') >= share_waiters then
            return {0, math.max(1, math.ceil(ms)), reason, 1}
        end
        redis.call('hset', KEYS[10], lease, share)
        redis.call('hincrby', KEYS[11], share, 1)
    end
    redis.call('zadd', KEYS[2], score, lease)
    redis.call('zadd', KEYS[3], now, lease)
    return {0, math.max(1, math.ceil(ms)), reason, 0}
end

local cooling = redis.call('pttl', KEYS[6])
if cooling > 0 then return wait(cooling, 'cooldown') end
for _, id in ipairs(redis.call('zrangebyscore', KEYS[3], '-inf', now - tonumber(ARGV[10]))) do
    forget(id)
end
local best = redis.call('zrange', KEYS[2], 0, 0, 'WITHSCORES')
if best[1] and best[1] ~= lease and tonumber(best[2]) < score then
    if math.floor(tonumber(best[2]) / scale) < priority then return wait(poll, 'priority') end
    return wait(poll, 'turn')
end
if share_limit > 0 and held >= share_limit then return wait(poll, 'share_limit') end
if limit > 0 and redis.call('zcard', KEYS[1]) >= limit then return wait(poll, 'slots') end
local function level(key, per_minute)
    local capacity = math.max(1, per_minute / 60)
    local state = redis.call('hmget', key, 'level', 'at')
    local current = tonumber(state[1]) or capacity
    local at = tonumber(state[2]) or now
    return math.min(capacity, current + math.max(0, now - at) * per_minute / 60000)
end
local requests, tokens
if rpm > 0 then
    requests = level(KEYS[4], rpm)
    if requests < 1 then return wait((1 - requests) * 60000 / rpm, 'requests') end
end
if tpm > 0 then
    tokens = level(KEYS[5], tpm)
    if tokens <= 0 then return wait((1 - tokens) * 60000 / tpm, 'tokens') end
end
if rpm > 0 then
    redis.call('hset', KEYS[4], 'level', tostring(requests - 1), 'at', tostring(now))
    redis.call('pexpire', KEYS[4], 120000)
end
if tpm > 0 then
    redis.call('hset', KEYS[5], 'level', tostring(tokens - cost), 'at', tostring(now))
    redis.call('pexpire', KEYS[5], 120000)
end
if counted then
    redis.call('zadd', KEYS[1], now + lease_ms, lease)
    if share ~= '' then
        redis.call('hset', KEYS[8], lease, share)
        redis.call('hincrby', KEYS[9], share, 1)
    end
end
if budget > 0 and KEYS[12] ~= '' then
    redis.call('incrby', KEYS[12], cost)
    redis.call('pexpire', KEYS[12], tonumber(ARGV[15]) + 86400000)
end
forget(lease)
redis.call('hincrby', KEYS[7], 'requests', 1)
redis.call('hincrby', KEYS[7], 'tokens', cost)
redis.call('expire', KEYS[7], 90)
return {1, 0, 'ok', 0}
