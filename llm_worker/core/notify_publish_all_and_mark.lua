local published = {}
local last = #KEYS
local max_entries = ARGV[#ARGV]
for i = 2, last - 1 do
    if redis.call('set', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
        published[#published + 1] =
            redis.call('xadd', KEYS[1], 'MAXLEN', '~', max_entries, '*', 'data', ARGV[i + 2])
    end
end
redis.call('set', KEYS[last], ARGV[3], 'EX', ARGV[2])
return published
