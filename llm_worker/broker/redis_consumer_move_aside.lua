for _, id in ipairs(redis.call('smembers', KEYS[1])) do
    if redis.call('hget', KEYS[2], id) == ARGV[1] then
        redis.call('srem', KEYS[1], id)
        redis.call('hdel', KEYS[2], id)
        redis.call('hset', KEYS[3], id, ARGV[1])
        return id
    end
end
return false
