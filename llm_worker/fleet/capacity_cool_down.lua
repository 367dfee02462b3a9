local ms = tonumber(ARGV[1])
if redis.call('pttl', KEYS[1]) >= ms then return 0 end
redis.call('hset', KEYS[1], 'until', ARGV[2], 'reason', ARGV[3])
redis.call('pexpire', KEYS[1], ms)
redis.call('zadd', KEYS[2], ARGV[2], ARGV[4] .. ':' .. ARGV[2])
redis.call('zremrangebyscore', KEYS[2], '-inf', ARGV[5])
return 1
