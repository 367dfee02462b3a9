-- Give a slot back and correct the token counts by the usage reported.
-- KEYS: 1 slots, 2 tokens bucket, 3 usage window, 4 slot shares, 5 share slots,
--       6 the share's quota for the day the call was charged ('' when none)
-- ARGV: 1 lease, 2 tpm, 3 correction (tokens used minus the estimate charged)
redis.call('zrem', KEYS[1], ARGV[1])
unhold_slot(KEYS[4], KEYS[5], ARGV[1])
local tpm = tonumber(ARGV[2])
local correction = tonumber(ARGV[3])
if correction == 0 then return 1 end
if tpm > 0 then
    local current = tonumber(redis.call('hget', KEYS[2], 'level'))
    if current then
        local capacity = math.max(1, tpm / 60)
        redis.call('hset', KEYS[2], 'level', tostring(math.min(capacity, current - correction)))
    end
end
if redis.call('exists', KEYS[3]) == 1 then
    redis.call('hincrby', KEYS[3], 'tokens', correction)
end
if KEYS[6] ~= '' and redis.call('exists', KEYS[6]) == 1 then
    redis.call('incrby', KEYS[6], correction)
end
return 1
