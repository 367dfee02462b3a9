local stored = redis.call('get', KEYS[2])
if stored then
    return {'stored', stored}
end
local current = redis.call('get', KEYS[1])
if current and current ~= ARGV[1] then
    return {'held', current}
end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {'taken', ''}
