redis.call('zrem', KEYS[1], ARGV[1])
return redis.call('hdel', KEYS[2], ARGV[1])
