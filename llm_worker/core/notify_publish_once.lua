if redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
    return redis.call('xadd', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'data', ARGV[2])
end
return false
