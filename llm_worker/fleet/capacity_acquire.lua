local now = tonumber(ARGV[1])
local lease = ARGV[2]
local lease_ms = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local rpm = tonumber(ARGV[5])
local tpm = tonumber(ARGV[6])
local cost = tonumber(ARGV[7])
local priority = tonumber(ARGV[8])
local poll = tonumber(ARGV[9])
local function wait(ms, reason)
    redis.call('zadd', KEYS[2], priority, lease)
    redis.call('zadd', KEYS[3], now, lease)
    return {0, math.max(1, math.ceil(ms)), reason}
end
local cooling = redis.call('pttl', KEYS[6])
if cooling > 0 then return wait(cooling, 'cooldown') end
local stale = redis.call('zrangebyscore', KEYS[3], '-inf', now - tonumber(ARGV[10]))
for _, id in ipairs(stale) do redis.call('zrem', KEYS[2], id) end
redis.call('zremrangebyscore', KEYS[3], '-inf', now - tonumber(ARGV[10]))
local best = redis.call('zrange', KEYS[2], 0, 0, 'WITHSCORES')
if best[1] and best[1] ~= lease and tonumber(best[2]) < priority then
    return wait(poll, 'priority')
end
if limit > 0 then
    redis.call('zremrangebyscore', KEYS[1], '-inf', now)
    if redis.call('zcard', KEYS[1]) >= limit then return wait(poll, 'slots') end
end
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
if limit > 0 then redis.call('zadd', KEYS[1], now + lease_ms, lease) end
redis.call('zrem', KEYS[2], lease)
redis.call('zrem', KEYS[3], lease)
redis.call('hincrby', KEYS[7], 'requests', 1)
redis.call('hincrby', KEYS[7], 'tokens', cost)
redis.call('expire', KEYS[7], 90)
return {1, 0, 'ok'}
