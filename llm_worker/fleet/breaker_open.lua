local opened = redis.call('hsetnx', KEYS[1], 'since', ARGV[1])
redis.call('hset', KEYS[1], 'last_error', ARGV[2])
local current = tonumber(redis.call('hget', KEYS[1], 'next_probe_at'))
if opened == 1 or not current or tonumber(ARGV[3]) > current then
    redis.call('hset', KEYS[1], 'next_probe_at', ARGV[3])
end
return opened
