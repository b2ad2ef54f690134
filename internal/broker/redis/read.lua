-- Reads a channel's position and its events after a position, and
-- publishes a read marker to the reading node in the same atomic step:
-- every event numbered up to the position read was published on the bus
-- before the marker, and none after it, so when the node's subscriber
-- reaches the marker it has delivered exactly up to that position.
--
-- KEYS[1] meta hash   KEYS[2] stream (see append.lua)
-- ARGV[1] the node's marker channel   ARGV[2] the marker envelope
-- ARGV[3] since epoch   ARGV[4] since offset   ARGV[5] TTL in ms (0: none)
-- ARGV[6] now in unix µs ("": Redis's clock)
-- Returns {epoch, last offset, ok (0/1), events}; epoch "" when the
-- channel has no history (nothing is stored then).
redis.call('PUBLISH', ARGV[1], ARGV[2])
local meta, stream = KEYS[1], KEYS[2]
local sinceEpoch, since, ttl, now = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local m = redis.call('HMGET', meta, 'e', 'n')
local epoch, last = m[1], m[2]
if not epoch then
  if sinceEpoch == '' and since == 0 then return {'', 0, 1} end
  return {'', 0, 0}
end
last = tonumber(last)
if ttl > 0 then
  -- A channel being read keeps its epoch and offset while its events
  -- expire, like the memory store's keep-alive.
  local left = redis.call('PTTL', meta)
  if left >= 0 and left < ttl / 2 then redis.call('PEXPIRE', meta, ttl) end
end
if sinceEpoch == '' and since == 0 then sinceEpoch = epoch end
if sinceEpoch ~= epoch or since > last then return {epoch, last, 0} end
if since == last then return {epoch, last, 1} end
local evs = redis.call('XRANGE', stream, since + 1, last)
if #evs == 0 or string.match(evs[1][1], '^(%d+)') ~= tostring(since + 1) then
  return {epoch, last, 0} -- dropped (MaxEvents, or the stream expired)
end
if ttl > 0 then
  if now == '' then
    local t = redis.call('TIME')
    now = t[1] .. string.format('%06d', tonumber(t[2]))
  end
  local f = evs[1][2]
  for i = 1, #f, 2 do
    if f[i] == 't' and tonumber(f[i + 1]) <= tonumber(now) - ttl * 1000 then
      return {epoch, last, 0} -- past the TTL
    end
  end
end
return {epoch, last, 1, evs}
