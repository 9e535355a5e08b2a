/**
 * The Lua scripts of the Redis history: each runs atomically in Redis, so
 * two nodes never get the same id and a message is never stored without its
 * indexes, its cid or its log entry. KEYS[1] is the key prefix. Index keys
 * come from the node (`keysOf`): routing stays one table, in TypeScript.
 */
import { CID_WINDOW_MS } from "./history";
import { Script } from "../cluster/redis";

const EPOCH_CHECK = String.raw`
local p = KEYS[1]
if redis.call('GET', p .. 'epoch') ~= ARGV[1] then
  return redis.error_reply('EPOCH the store has another epoch or none')
end`;

/**
 * ARGV: epoch, logMax, then 8 fields per message: kind, from, to ("" for
 * none), cid ("" for none), at, rest (the frame JSON after its id), topics
 * (joined by "\n"), index keys (joined by " "). Returns per message its id,
 * or {"dup", id, kind, to} for a cid stored within the window.
 */
export const APPEND = new Script(String.raw`${EPOCH_CHECK}
local out = {}
for i = 3, #ARGV, 8 do
  local kind, from, to, cid, at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local ck, hit = nil, nil
  if cid ~= '' then
    ck = p .. 'cid:' .. from .. '\n' .. cid
    local v = redis.call('GET', ck)
    if v then
      local hid, hkind, hto, hat = string.match(v, '^(%d+)|([^|]*)|(.*)|([^|]*)$')
      if hid and tonumber(hat) >= tonumber(at) - ${CID_WINDOW_MS} then hit = { 'dup', tonumber(hid), hkind, hto } end
    end
  end
  if hit then
    out[#out + 1] = hit
  else
    local id = string.format('%d', redis.call('INCR', p .. 'id'))
    local frame = '{"type":"message","id":' .. id .. ARGV[i + 5]
    redis.call('XADD', p .. 'log', 'MAXLEN', '~', ARGV[2], id .. '-0', 'f', frame, 'k', ARGV[i + 6], 'a', at)
    redis.call('HSET', p .. 'm', id, frame)
    for k in string.gmatch(ARGV[i + 7], '[^ ]+') do redis.call('ZADD', p .. 'ix:' .. k, id, id) end
    if ck then
      redis.call('HSET', p .. 'c', id, cid)
      redis.call('SET', ck, id .. '|' .. kind .. '|' .. to .. '|' .. at, 'PX', ${CID_WINDOW_MS})
    end
    out[#out + 1] = tonumber(id)
  end
end
return out`);

/**
 * ARGV: epoch, the prunedThrough the node read, the new prunedThrough, the
 * number of index keys, those keys, the number of users, (user, newest
 * pruned direct id to them) pairs, then the ids to remove. Applies nothing
 * and returns -1 when another node pruned meanwhile; else how many it removed.
 */
export const PRUNE = new Script(String.raw`${EPOCH_CHECK}
if tonumber(redis.call('GET', p .. 'pruned') or '0') ~= tonumber(ARGV[2]) then return -1 end
local through = ARGV[3]
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  redis.call('ZREMRANGEBYSCORE', p .. 'ix:' .. ARGV[i], '-inf', through)
  i = i + 1
end
local users = tonumber(ARGV[i])
i = i + 1
for _ = 1, users do
  local cur = tonumber(redis.call('HGET', p .. 'pruned_inbox', ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > cur then redis.call('HSET', p .. 'pruned_inbox', ARGV[i], ARGV[i + 1]) end
  i = i + 2
end
local removed = 0
while i <= #ARGV do
  local last = math.min(i + 999, #ARGV)
  removed = removed + redis.call('HDEL', p .. 'm', unpack(ARGV, i, last))
  redis.call('HDEL', p .. 'c', unpack(ARGV, i, last))
  i = last + 1
end
redis.call('SET', p .. 'pruned', through)
return removed`);

/** KEYS[1]: the cursors hash; ARGV: user, id. Raises the user's cursor to id, never lowers it. */
export const SET_CURSOR = new Script(String.raw`
if tonumber(ARGV[2]) > tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 0`);

/** Raises a field of a hash to ARGV[2] (never lowers it); returns the value now. */
export const RAISE = new Script(String.raw`
local v = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > v then
  v = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return v`);
