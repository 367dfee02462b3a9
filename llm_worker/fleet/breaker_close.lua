local since = redis.call('hget', KEYS[1], 'since')
if not since then return false end
redis.call('del', KEYS[1])
redis.call('zadd', KEYS[2], ARGV[1], since .. ':' .. ARGV[1])
redis.call('zremrangebyscore', KEYS[2], '-inf', ARGV[2])
return since
