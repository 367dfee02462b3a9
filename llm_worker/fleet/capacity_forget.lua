-- Stop counting a job that gave up waiting on its thread.
-- KEYS: 1 waiting, 2 waiting:seen, 3 waiter shares, 4 share waiters
-- ARGV: 1 lease
forget_waiter(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1])
return 1
