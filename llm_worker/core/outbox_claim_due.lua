local due = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
    redis.call('zadd', KEYS[1], ARGV[2], id)
end
return due
