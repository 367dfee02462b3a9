local held = {}
for _, id in ipairs(ARGV) do held[id] = true end
local moved = 0
for _, id in ipairs(redis.call('smembers', KEYS[1])) do
    if not held[id] then
        redis.call('srem', KEYS[1], id)
        if redis.call('hexists', KEYS[3], id) == 1 then
            redis.call('rpush', KEYS[2], id)
            moved = moved + 1
        end
    end
end
return moved
