-- Store a job's first valid result and release its lease.
-- KEYS[1] the lease, KEYS[2] the result; ARGV[1] the holder, ARGV[2] the result, ARGV[3] its TTL (s).
-- A result already stored wins: it is returned ('stored') and ARGV[2] is dropped.  A lease
-- another delivery holds now means this one lost it: nothing is written ('lost', the holder).
local stored = redis.call('get', KEYS[2])
local current = redis.call('get', KEYS[1])
if stored then
    if current == ARGV[1] then
        redis.call('del', KEYS[1])
    end
    return {'stored', stored}
end
if current and current ~= ARGV[1] then
    return {'lost', current}
end
redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3])
if current then
    redis.call('del', KEYS[1])
end
return {'kept', ''}
