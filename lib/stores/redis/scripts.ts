import { script } from '../../redis/script.js'

// The Redis store's Lua scripts. Each runs atomically, so a session and its user's index
// always change together. Every key a script touches shares one hash tag, `{<tag>}`
// (or `{<anonymous id>}`): the session key and the index come in KEYS, the keys of the
// user's other sessions are built from `base` (the session-key prefix of that same tag),
// which keeps every script on one slot of a Redis Cluster.
//
// A session is a hash: l lastSeenAt, e expiresAt, b dbsc, m (and m1, m2, ...) what the
// session gets at insert and never changes (secret hash, created, authenticated, policy, ip,
// user agent, user id: one text in pieces of at most 64 bytes, see store.ts; no script reads
// it), and one field `d:<key>` per data key holding its serialized value. The index is a
// sorted set of the user's session suffixes scored by expiresAt; it expires with the user's
// last session, and every write that changes it prunes what is past.
//
// A data write is one HSET, sent without a script (see store.ts): it must never make a key
// without expiry, nor bring data back to a deleted session. So a session key expires on Redis
// LINGER ms after its deadline (it reads as gone from the deadline on: every read checks `e`),
// and a script that deletes a session leaves in its place a marker, an empty string that lives
// LINGER ms: an HSET in flight fails on it (WRONGTYPE), which tells the writer the session is
// gone, and writes nothing. Reads take a marker for no session; so do the scripts, which read a
// field of the session key with `field` (an HGET that reads a marker as nothing).

/** Milliseconds a session key outlives its deadline, and a deleted session's marker lives. */
export const LINGER = 60_000

// Deletes a session key and leaves the marker in its place; returns 1 when there was a key.
// `field`: HGET of a session key, nil on a marker.
const BURY = `
local function bury (key)
  if redis.call('DEL', key) == 0 then return 0 end
  redis.call('SET', key, '', 'PX', ${LINGER})
  return 1
end
local function field (key, name)
  local v = redis.pcall('HGET', key, name)
  if type(v) == 'table' then return nil end
  return v
end
`

// Sets the index to expire with its latest session; an empty sorted set is gone already.
const EXPIRE_INDEX = `
local function expireIndex (idx)
  local last = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', idx, math.ceil(tonumber(last[2]))) end
end
`

// Calls a command on a key with list[from..to], at most 1,000 values at a time: Lua's unpack
// holds about 8,000 values, and a session may have more keys than that. Nothing when from > to.
const CHUNKED = `
local function chunked (command, key, list, from, to)
  for i = from, to, 1000 do
    redis.call(command, key, unpack(list, i, math.min(i + 999, to)))
  end
end
`

/**
 * KEYS: session, [index]. ARGV: now, member, maxPerUser, base, expiresAt, field, value, ...
 * Returns -1 when the id is taken by a live session, otherwise the members of the sessions the cap evicted.
 */
export const INSERT = script(BURY + EXPIRE_INDEX + CHUNKED + `
local key, idx = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local e = field(key, 'e')
if e and tonumber(e) > now then return -1 end
redis.call('DEL', key)
local evicted = {}
local member, expiresAt = ARGV[2], tonumber(ARGV[5])
if idx then
  local max, base = tonumber(ARGV[3]), ARGV[4]
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
  redis.call('ZREM', idx, member)
  local n = redis.call('ZCARD', idx)
  if n >= max then
    local seen = {}
    for _, m in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
      local l = redis.call('HGET', base .. m, 'l')
      if l then
        seen[#seen + 1] = { tonumber(l), m }
      else
        redis.call('ZREM', idx, m)
        n = n - 1
      end
    end
    table.sort(seen, function (x, y) return x[1] < y[1] or (x[1] == y[1] and x[2] < y[2]) end)
    local i = 1
    while n >= max do
      bury(base .. seen[i][2])
      redis.call('ZREM', idx, seen[i][2])
      evicted[#evicted + 1] = seen[i][2]
      n, i = n - 1, i + 1
    end
  end
end
chunked('HSET', key, ARGV, 6, #ARGV)
redis.call('PEXPIREAT', key, math.ceil(expiresAt) + ${LINGER})
if idx then
  redis.call('ZADD', idx, expiresAt, member)
  expireIndex(idx)
end
return evicted
`)

/**
 * KEYS: session, [index]. ARGV: now, member, lastSeenAt, expiresAt or '', clear (1/0),
 * dbsc ('' to leave it, else 'n' or 'v' then the value it must have: none, or ARGV[7]),
 * dbsc from, dbsc to, unset count, unset fields..., field, value, ... Returns 1, or 0 when
 * the session is gone or its dbsc field is not what the compare-and-set expects.
 */
export const PATCH = script(BURY + EXPIRE_INDEX + CHUNKED + `
local key, idx = KEYS[1], KEYS[2]
local now, member = tonumber(ARGV[1]), ARGV[2]
local e = field(key, 'e')
if not e or tonumber(e) <= now then
  if e then bury(key) end
  if idx then redis.call('ZREM', idx, member) end
  return 0
end
if ARGV[6] ~= '' then
  local b = redis.call('HGET', key, 'b')
  if (ARGV[6] == 'n' and b) or (ARGV[6] == 'v' and b ~= ARGV[7]) then return 0 end
  redis.call('HSET', key, 'b', ARGV[8])
end
if ARGV[5] == '1' then
  local drop = {}
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if string.sub(f, 1, 2) == 'd:' then drop[#drop + 1] = f end
  end
  chunked('HDEL', key, drop, 1, #drop)
end
local unset = tonumber(ARGV[9])
chunked('HDEL', key, ARGV, 10, 9 + unset)
local first = 10 + unset
-- 'l' with the first chunk of data fields: a small write stays one HSET.
redis.call('HSET', key, 'l', ARGV[3], unpack(ARGV, first, math.min(first + 999, #ARGV)))
chunked('HSET', key, ARGV, first + 1000, #ARGV)
if ARGV[4] ~= '' then
  local expiresAt = tonumber(ARGV[4])
  redis.call('HSET', key, 'e', ARGV[4])
  redis.call('PEXPIREAT', key, math.ceil(expiresAt) + ${LINGER})
  if idx then
    redis.call('ZADD', idx, expiresAt, member)
    redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
    expireIndex(idx)
  end
end
return 1
`)

/** KEYS: session, [index]. ARGV: now, member. Returns 1 when a live session was deleted. */
export const DELETE = script(BURY + EXPIRE_INDEX + `
local key, idx = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local e = field(key, 'e')
if e then bury(key) end
if idx then
  redis.call('ZREM', idx, ARGV[2])
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
  expireIndex(idx)
end
if e and tonumber(e) > now then return 1 end
return 0
`)

/** KEYS: index. ARGV: now, base. Returns member, fields, member, fields, ... of the live sessions. */
export const GET_ALL = script(`
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  local h = redis.call('HGETALL', ARGV[2] .. m)
  if #h > 0 then
    out[#out + 1] = m
    out[#out + 1] = h
  end
end
return out
`)

/** KEYS: index. ARGV: now, base, members to keep... Returns the members of the live sessions it deleted. */
export const DELETE_ALL = script(BURY + EXPIRE_INDEX + `
local idx = KEYS[1]
local now, base = tonumber(ARGV[1]), ARGV[2]
local keep = {}
for i = 3, #ARGV do keep[ARGV[i]] = true end
local all = redis.call('ZRANGE', idx, 0, -1, 'WITHSCORES')
local deleted = {}
for i = 1, #all, 2 do
  local m = all[i]
  if not keep[m] then
    if bury(base .. m) == 1 and tonumber(all[i + 1]) > now then deleted[#deleted + 1] = m end
    redis.call('ZREM', idx, m)
  end
end
redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
expireIndex(idx)
return deleted
`)
