-- Numbers, stores and publishes one event of a channel with history, in
-- one atomic step: the order of offsets is the order of publishes on the
-- bus, which is every node's delivery order.
--
-- KEYS[1] meta hash (e: epoch, n: last offset)
-- KEYS[2] stream of events: id "<offset>-0", fields f (frame), t (unix µs), k (idempotency key)
-- KEYS[3] hash idempotency key -> offset
-- ARGV[1] bus channel      ARGV[2] envelope header   ARGV[3] frame (a JSON object)
-- ARGV[4] idempotency key ("" none)                  ARGV[5] max events (>= 1)
-- ARGV[6] TTL in ms (0: no age bound)                ARGV[7] now in unix µs ("": Redis's clock)
-- ARGV[8] the epoch to start when the channel has none (its history was lost)
-- Returns {epoch, offset, dup (0/1)}.
local meta, stream, keys = KEYS[1], KEYS[2], KEYS[3]
local key, maxev, ttl, now = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
if now == '' then
  local t = redis.call('TIME')
  now = t[1] .. string.format('%06d', tonumber(t[2]))
end
-- An event is past the TTL when now - t >= TTL.
local cutoff = nil
if ttl > 0 then cutoff = tonumber(now) - ttl * 1000 end

local function field(entry, name)
  local f = entry[2]
  for i = 1, #f, 2 do
    if f[i] == name then return f[i + 1] end
  end
  return nil
end

local function offsetOf(id) return string.match(id, '^(%d+)') end

local epoch = redis.call('HGET', meta, 'e')
if not epoch then
  -- No history (never published, or it expired): a new epoch, and
  -- nothing left of an older one may answer for it.
  epoch = ARGV[8]
  redis.call('DEL', stream, keys)
  redis.call('HSET', meta, 'e', epoch, 'n', 0)
end

if key ~= '' then
  local off = redis.call('HGET', keys, key)
  if off then
    local e = redis.call('XRANGE', stream, off, off)
    if #e > 0 and (not cutoff or tonumber(field(e[1], 't')) > cutoff) then
      return {epoch, tonumber(off), 1}
    end
    redis.call('HDEL', keys, key) -- its event left history
  end
end

local off = redis.call('HINCRBY', meta, 'n', 1)
local full = string.sub(ARGV[3], 1, -2) .. ',"epoch":"' .. epoch .. '","offset":' .. off .. '}'

-- XADD's exact MAXLEN drops the oldest events; their keys go with them.
local len = redis.call('XLEN', stream)
if len >= maxev and redis.call('EXISTS', keys) == 1 then
  for _, e in ipairs(redis.call('XRANGE', stream, '-', '+', 'COUNT', len - maxev + 1)) do
    local k = field(e, 'k')
    if k and redis.call('HGET', keys, k) == offsetOf(e[1]) then redis.call('HDEL', keys, k) end
  end
end
if key ~= '' then
  redis.call('XADD', stream, 'MAXLEN', maxev, off .. '-0', 'f', full, 't', now, 'k', key)
  redis.call('HSET', keys, key, off)
else
  redis.call('XADD', stream, 'MAXLEN', maxev, off .. '-0', 'f', full, 't', now)
end
if ttl > 0 then
  redis.call('PEXPIRE', meta, ttl)
  redis.call('PEXPIRE', stream, ttl)
  redis.call('PEXPIRE', keys, ttl)
end
redis.call('PUBLISH', ARGV[1], ARGV[2] .. full)
return {epoch, off, 0}
