redis.call('lrem', KEYS[1], 0, ARGV[1])
return redis.call('hdel', KEYS[2], ARGV[1])
