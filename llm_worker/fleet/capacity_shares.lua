-- Functions the capacity scripts share (prepended to each): who a slot or a waiter counts
-- for, kept beside it, and a count per share with no field at zero.

local function count_down(hash, share)
    if redis.call('hincrby', hash, share, -1) <= 0 then redis.call('hdel', hash, share) end
end

-- A waiter leaves: out of the waiting order and its share's count of waiters.
local function forget_waiter(waiting, seen, waiter_shares, share_waiters, id)
    redis.call('zrem', waiting, id)
    redis.call('zrem', seen, id)
    local who = redis.call('hget', waiter_shares, id)
    if who then
        redis.call('hdel', waiter_shares, id)
        count_down(share_waiters, who)
    end
end

-- A slot is given back or has expired: out of its share's count of slots held.
local function unhold_slot(slot_shares, share_slots, id)
    local who = redis.call('hget', slot_shares, id)
    if who then
        redis.call('hdel', slot_shares, id)
        count_down(share_slots, who)
    end
end
