-- Stop counting a job that gave up waiting on its thread.
-- KEYS: 1 waiting, 2 waiting:seen, 3 waiter shares, 4 share waiters
-- ARGV: 1 lease
redis.call('zrem', KEYS[1], ARGV[1])
redis.call('zrem', KEYS[2], ARGV[1])
local who = redis.call('hget', KEYS[3], ARGV[1])
if who then
    redis.call('hdel', KEYS[3], ARGV[1])
    if redis.call('hincrby', KEYS[4], who, -1) <= 0 then redis.call('hdel', KEYS[4], who) end
end
return 1
