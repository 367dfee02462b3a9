redis.call('zrem', KEYS[1], ARGV[1])
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
return 1
