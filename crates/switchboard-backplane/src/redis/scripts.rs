//! The Lua scripts that make each Redis operation atomic, and their typed wrappers.

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::{Script, Value};

use super::failure::CallError;
use super::layout::Keys;
use crate::types::{Envelope, Epoch, Position, Recovery};

/// Assigns the next offset, appends to the stream (trimmed by count) and publishes, in one
/// step. Creates the channel's epoch when it is missing (first use, flush, restart). With a
/// dedupe key already in the channel's window, publishes nothing and answers the offset that
/// key got.
///
/// KEYS: meta, history, dedupe keys. ARGV: data, candidate epoch, history size, history ttl
/// (ms), channel ttl (ms), pub/sub channel, dedupe key ('' for none), dedupe window, most
/// history bytes per channel (0: no byte cap).
/// Returns `{epoch, offset, duplicate (0 or 1)}`.
///
/// `XADD MAXLEN` bounds the count. With a byte cap, the meta hash's `b` is an upper bound of
/// the stream's bytes of data (each publish adds its own; it restarts with a new stream):
/// only when it passes the cap are the bytes counted exactly and the oldest entries deleted
/// down to three quarters of the cap (the newest always kept), so the common publish pays
/// one `HINCRBY` and an `XLEN`, and a recount happens at most once per quarter of the cap
/// published.
const PUBLISH_LUA: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[2]
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
elseif ARGV[7] ~= '' then
  local seen = redis.call('ZSCORE', KEYS[3], ARGV[7])
  if seen then return {epoch, tonumber(seen), 1} end
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local size = tonumber(ARGV[3])
if size > 0 then
  local t = redis.call('TIME')
  local now = t[1] * 1000 + math.floor(t[2] / 1000)
  redis.call('XADD', KEYS[2], 'MAXLEN', size, string.format('%d-0', offset),
    't', string.format('%d', now), 'd', ARGV[1])
  local cap = tonumber(ARGV[9])
  if cap > 0 then
    -- `b` is at least the stream's bytes (count trimming above does not lower it): when
    -- it passes the cap, recount exactly and drop the oldest down to three quarters of it.
    local bytes
    if redis.call('XLEN', KEYS[2]) == 1 then
      bytes = string.len(ARGV[1])
      redis.call('HSET', KEYS[1], 'b', bytes)
    else
      bytes = redis.call('HINCRBY', KEYS[1], 'b', string.len(ARGV[1]))
    end
    if bytes > cap then
      local entries = redis.call('XRANGE', KEYS[2], '-', '+')
      local sizes, total = {}, 0
      for i, entry in ipairs(entries) do
        local fields, d = entry[2], 0
        for j = 1, #fields, 2 do
          if fields[j] == 'd' then d = string.len(fields[j + 1]) end
        end
        sizes[i] = d
        total = total + d
      end
      local i = 1
      while total > cap - math.floor(cap / 4) and i < #entries do
        redis.call('XDEL', KEYS[2], entries[i][1])
        total = total - sizes[i]
        i = i + 1
      end
      redis.call('HSET', KEYS[1], 'b', total)
    end
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
local window = tonumber(ARGV[8])
if ARGV[7] ~= '' and window > 0 then
  redis.call('ZADD', KEYS[3], offset, ARGV[7])
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -window - 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
redis.call('PUBLISH', ARGV[6], 'm' .. epoch .. ':' .. string.format('%d', offset) .. ':' .. ARGV[1])
return {epoch, offset, 0}
";

/// Starts a new epoch for a channel whose continuity this instance broke (it delivered
/// messages locally while cut off from Redis), and tells every instance on the channel's
/// pub/sub, so that their subscribers reset instead of silently missing those messages.
///
/// KEYS: meta, history, dedupe keys. ARGV: new epoch, channel ttl (ms), pub/sub channel.
const NEW_EPOCH_LUA: &str = r"
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'e', ARGV[1], 'o', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], 'r' .. ARGV[1])
return 1
";

/// The channel's position and, when the epoch matches and nothing after `after` is gone
/// (trimmed by count or older than the age bound), every message after it. Creates the epoch
/// when it is missing.
///
/// KEYS: meta, history, dedupe keys. ARGV: candidate epoch, known epoch ('' for none), after,
/// history ttl (ms), channel ttl (ms).
const READ_LUA: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'e')
local offset = 0
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
else
  offset = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')
end
if epoch ~= ARGV[2] then return {epoch, offset, false} end
local after = tonumber(ARGV[3])
if after > offset then return {epoch, offset, false} end
if after == offset then return {epoch, offset, {}} end
local first = string.format('%d-0', after + 1)
local entries = redis.call('XRANGE', KEYS[2], first, '+', 'COUNT', offset - after)
if #entries == 0 or entries[1][1] ~= first then return {epoch, offset, false} end
local t = redis.call('TIME')
local oldest = t[1] * 1000 + math.floor(t[2] / 1000) - tonumber(ARGV[4])
local fields = entries[1][2]
for i = 1, #fields, 2 do
  if fields[i] == 't' and tonumber(fields[i + 1]) <= oldest then
    return {epoch, offset, false}
  end
end
return {epoch, offset, entries}
";

/// Adds or replaces a member, refreshes its expiry, and publishes the change. In `restore`
/// mode (re-announcing this instance's members after a reconnect) it publishes only when the
/// member was absent or its data differs. Returns 1 when the member was present.
///
/// KEYS: presence, expiry. ARGV: connection id, data, ttl (ms), key ttl (ms), pub/sub channel,
/// mode ('set' or 'restore').
const PRESENCE_SET_LUA: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local expiry = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if expiry and tonumber(expiry) <= now then old = false end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], string.format('%d', now + tonumber(ARGV[3])), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if ARGV[6] == 'set' or old ~= ARGV[2] then
  local action = 'j'
  if old then action = 'u' end
  redis.call('PUBLISH', ARGV[5], 'p' .. action .. string.len(ARGV[1]) .. ':' .. ARGV[1] .. ARGV[2])
end
if old then return 1 end
return 0
";

/// Removes a member and publishes its leave. Returns its data, or nil when absent.
///
/// KEYS: presence, expiry. ARGV: connection id, pub/sub channel.
const PRESENCE_REMOVE_LUA: &str = r"
local data = redis.call('HGET', KEYS[1], ARGV[1])
if not data then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[2], 'pl' .. string.len(ARGV[1]) .. ':' .. ARGV[1] .. data)
return data
";

/// Refreshes a present member's expiry.
///
/// KEYS: presence, expiry. ARGV: connection id, ttl (ms), key ttl (ms).
const PRESENCE_TOUCH_LUA: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[2], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
";

/// Removes expired members (at most 1000 per call), publishing a leave for each; then returns
/// the remaining members as a flat list when asked to.
///
/// KEYS: presence, expiry. ARGV: pub/sub channel, '1' to list.
const PRESENCE_SWEEP_LUA: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now), 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  local data = redis.call('HGET', KEYS[1], id)
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  if data then
    redis.call('PUBLISH', ARGV[1], 'pl' .. string.len(id) .. ':' .. id .. data)
  end
end
if ARGV[2] == '1' then return redis.call('HGETALL', KEYS[1]) end
return #expired
";

/// Drops expired leases, then grants or renews `holder`'s when it holds one or fewer than
/// `limit` are held; returns 1 when granted.
///
/// KEYS: leases. ARGV: holder, limit, ttl (ms).
const LEASE_ACQUIRE_LUA: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[3])), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
";

static LEASE_ACQUIRE: LazyLock<Script> = LazyLock::new(|| Script::new(LEASE_ACQUIRE_LUA));

/// Grants or renews a lease (see [`LEASE_ACQUIRE_LUA`]).
pub(crate) async fn lease_acquire(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    key: &str,
    holder: &str,
    limit: u32,
    ttl_ms: u64,
) -> Result<bool, CallError> {
    let granted: i64 = LEASE_ACQUIRE
        .key(keys.leases(key))
        .arg(holder)
        .arg(limit)
        .arg(ttl_ms.max(1))
        .invoke_async(conn)
        .await?;
    Ok(granted == 1)
}

/// Gives a lease back.
pub(crate) async fn lease_release(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    key: &str,
    holder: &str,
) -> Result<(), CallError> {
    let _: i64 = redis::cmd("ZREM")
        .arg(keys.leases(key))
        .arg(holder)
        .query_async(conn)
        .await?;
    Ok(())
}

/// Joins (or renews) ARGV[1] in the group set KEYS[1] for ARGV[2] ms, keeping the group's
/// latest expiry in the index KEYS[2] under ARGV[3]. Returns 0 (joined a live group),
/// 1 (first) or 2 (first, after the last members lapsed unreported: expired members were
/// still there, or the index says the group's members had all expired).
const GROUP_JOIN_LUA: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local expired = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
local alive = redis.call('ZCARD', KEYS[1])
local indexed = redis.call('ZSCORE', KEYS[2], ARGV[3])
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%d', expiry), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
if not indexed or tonumber(indexed) < expiry then
  redis.call('ZADD', KEYS[2], string.format('%d', expiry), ARGV[3])
end
if alive > 0 then return 0 end
if expired > 0 or (indexed and tonumber(indexed) <= now) then return 2 end
return 1
";

/// Removes ARGV[1] from the group set KEYS[1] (index KEYS[2], group ARGV[2]). Returns 1
/// when that removed the last live member.
const GROUP_LEAVE_LUA: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return removed
end
return 0
";

/// Walks the index KEYS[1] for groups whose latest expiry passed (at most 100): each that
/// has no live member left is removed and returned; the others get their new latest
/// expiry. Group keys are ARGV[1] .. '{' .. group .. '}:group'.
const GROUP_REAP_LUA: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now), 'LIMIT', 0, 100)
local lapsed = {}
for _, group in ipairs(due) do
  local key = ARGV[1] .. '{' .. group .. '}:group'
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now))
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #top == 0 then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], group)
    table.insert(lapsed, group)
  else
    redis.call('ZADD', KEYS[1], top[2], group)
  end
end
return lapsed
";

static GROUP_JOIN: LazyLock<Script> = LazyLock::new(|| Script::new(GROUP_JOIN_LUA));
static GROUP_LEAVE: LazyLock<Script> = LazyLock::new(|| Script::new(GROUP_LEAVE_LUA));
static GROUP_REAP: LazyLock<Script> = LazyLock::new(|| Script::new(GROUP_REAP_LUA));

/// Joins or renews a group membership (see [`GROUP_JOIN_LUA`]).
pub(crate) async fn group_join(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    group: &str,
    member: &str,
    ttl_ms: u64,
) -> Result<crate::types::GroupJoin, CallError> {
    let found: i64 = GROUP_JOIN
        .key(keys.group(group))
        .key(keys.groups())
        .arg(member)
        .arg(ttl_ms.max(1))
        .arg(group)
        .invoke_async(conn)
        .await?;
    Ok(match found {
        0 => crate::types::GroupJoin::Joined,
        1 => crate::types::GroupJoin::First,
        _ => crate::types::GroupJoin::FirstAfterLapse,
    })
}

/// Leaves a group (see [`GROUP_LEAVE_LUA`]).
pub(crate) async fn group_leave(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    group: &str,
    member: &str,
) -> Result<bool, CallError> {
    let emptied: i64 = GROUP_LEAVE
        .key(keys.group(group))
        .key(keys.groups())
        .arg(member)
        .arg(group)
        .invoke_async(conn)
        .await?;
    Ok(emptied == 1)
}

/// Reaps groups whose members all lapsed (see [`GROUP_REAP_LUA`]).
pub(crate) async fn group_reap(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
) -> Result<Vec<String>, CallError> {
    let lapsed: Vec<String> = GROUP_REAP
        .key(keys.groups())
        .arg(keys.prefix())
        .invoke_async(conn)
        .await?;
    Ok(lapsed)
}

static PUBLISH: LazyLock<Script> = LazyLock::new(|| Script::new(PUBLISH_LUA));
static READ: LazyLock<Script> = LazyLock::new(|| Script::new(READ_LUA));
static NEW_EPOCH: LazyLock<Script> = LazyLock::new(|| Script::new(NEW_EPOCH_LUA));
static PRESENCE_SET: LazyLock<Script> = LazyLock::new(|| Script::new(PRESENCE_SET_LUA));
static PRESENCE_REMOVE: LazyLock<Script> = LazyLock::new(|| Script::new(PRESENCE_REMOVE_LUA));
static PRESENCE_TOUCH: LazyLock<Script> = LazyLock::new(|| Script::new(PRESENCE_TOUCH_LUA));
static PRESENCE_SWEEP: LazyLock<Script> = LazyLock::new(|| Script::new(PRESENCE_SWEEP_LUA));

fn unexpected(what: &str, value: &Value) -> CallError {
    CallError::Protocol(format!("unexpected {what} reply: {value:?}").into())
}

fn bulk(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

fn int(value: &Value) -> Option<u64> {
    match value {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// Limits passed to the scripts, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) history_size: usize,
    /// Most bytes of data in one channel's history stream; 0: no byte cap.
    pub(crate) history_max_channel_bytes: usize,
    pub(crate) history_ttl_ms: u64,
    pub(crate) dedupe_window: usize,
    pub(crate) channel_ttl_ms: u64,
    pub(crate) presence_ttl_ms: u64,
    pub(crate) presence_key_ttl_ms: u64,
}

/// Publishes `data` (unless `dedupe_key` is in the window); returns the epoch, the offset
/// and whether it was a duplicate.
pub(crate) async fn publish(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    limits: &Limits,
    channel: &str,
    data: &[u8],
    dedupe_key: Option<&str>,
) -> Result<(Epoch, u64, bool), CallError> {
    let reply: Value = PUBLISH
        .key(keys.meta(channel))
        .key(keys.history(channel))
        .key(keys.dedupe(channel))
        .arg(data)
        .arg(Epoch::random().as_str())
        .arg(limits.history_size)
        .arg(limits.history_ttl_ms)
        .arg(limits.channel_ttl_ms)
        .arg(keys.pubsub(channel))
        .arg(dedupe_key.unwrap_or(""))
        .arg(limits.dedupe_window)
        .arg(limits.history_max_channel_bytes)
        .invoke_async(conn)
        .await?;
    let Value::Array(items) = &reply else {
        return Err(unexpected("publish", &reply));
    };
    match items.as_slice() {
        [epoch, offset, duplicate] => {
            let epoch = bulk(epoch.clone()).and_then(|b| String::from_utf8(b).ok());
            match (epoch, int(offset), int(duplicate)) {
                (Some(epoch), Some(offset), Some(duplicate)) => {
                    Ok((Epoch::new(epoch), offset, duplicate == 1))
                }
                _ => Err(unexpected("publish", &reply)),
            }
        }
        _ => Err(unexpected("publish", &reply)),
    }
}

/// Starts a new epoch for `channel` and announces it to every instance.
pub(crate) async fn new_epoch(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    limits: &Limits,
    channel: &str,
) -> Result<(), CallError> {
    let _: Value = NEW_EPOCH
        .key(keys.meta(channel))
        .key(keys.history(channel))
        .key(keys.dedupe(channel))
        .arg(Epoch::random().as_str())
        .arg(limits.channel_ttl_ms)
        .arg(keys.pubsub(channel))
        .invoke_async(conn)
        .await?;
    Ok(())
}

/// The channel's position, and every message after `after` when `known` is its epoch and
/// none of them is gone.
pub(crate) async fn read(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    limits: &Limits,
    channel: &Arc<str>,
    known: &str,
    after: u64,
) -> Result<Recovery, CallError> {
    let reply: Value = READ
        .key(keys.meta(channel))
        .key(keys.history(channel))
        .key(keys.dedupe(channel))
        .arg(Epoch::random().as_str())
        .arg(known)
        .arg(after)
        .arg(limits.history_ttl_ms)
        .arg(limits.channel_ttl_ms)
        .invoke_async(conn)
        .await?;
    parse_read(channel, reply)
}

fn parse_read(channel: &Arc<str>, reply: Value) -> Result<Recovery, CallError> {
    let Value::Array(items) = reply else {
        return Err(unexpected("read", &reply));
    };
    let mut items = items.into_iter();
    let (Some(epoch), Some(offset), Some(entries)) = (items.next(), items.next(), items.next())
    else {
        return Err(CallError::Protocol("short read reply".into()));
    };
    let epoch = bulk(epoch)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| CallError::Protocol("read reply without an epoch".into()))?;
    let offset = int(&offset).ok_or_else(|| unexpected("read offset", &offset))?;
    let messages = match entries {
        Value::Nil | Value::Boolean(false) => None,
        Value::Array(entries) => Some(
            entries
                .into_iter()
                .map(|entry| parse_entry(channel, entry))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        other => return Err(unexpected("read entries", &other)),
    };
    Ok(Recovery {
        position: Position {
            offset,
            epoch: Epoch::new(epoch),
        },
        messages,
    })
}

/// `[id, [field, value, ...]]` with id `<offset>-0` and the data in field `d`.
fn parse_entry(channel: &Arc<str>, entry: Value) -> Result<Envelope, CallError> {
    let Value::Array(parts) = entry else {
        return Err(unexpected("stream entry", &entry));
    };
    let mut parts = parts.into_iter();
    let (Some(id), Some(Value::Array(fields))) = (parts.next(), parts.next()) else {
        return Err(CallError::Protocol("malformed stream entry".into()));
    };
    let offset = bulk(id)
        .and_then(|id| {
            let id = String::from_utf8(id).ok()?;
            id.strip_suffix("-0")?.parse().ok()
        })
        .ok_or_else(|| CallError::Protocol("stream entry id is not <offset>-0".into()))?;
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        if bulk(name).as_deref() == Some(b"d") {
            let data = bulk(value)
                .ok_or_else(|| CallError::Protocol("stream entry data is not a string".into()))?;
            return Ok(Envelope {
                channel: Arc::clone(channel),
                offset,
                data: Bytes::from(data),
            });
        }
    }
    Err(CallError::Protocol("stream entry without data".into()))
}

/// How [`presence_set`] announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetMode {
    /// Always publish (a join or an update).
    Set,
    /// Publish only when the member was absent or changed (re-announcing after a reconnect).
    Restore,
}

/// Adds or replaces a member; returns whether it was present.
pub(crate) async fn presence_set(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    limits: &Limits,
    channel: &str,
    connection_id: &str,
    data: &[u8],
    mode: SetMode,
) -> Result<bool, CallError> {
    let reply: Value = PRESENCE_SET
        .key(keys.presence(channel))
        .key(keys.presence_expiry(channel))
        .arg(connection_id)
        .arg(data)
        .arg(limits.presence_ttl_ms)
        .arg(limits.presence_key_ttl_ms)
        .arg(keys.pubsub(channel))
        .arg(match mode {
            SetMode::Set => "set",
            SetMode::Restore => "restore",
        })
        .invoke_async(conn)
        .await?;
    int(&reply)
        .map(|present| present == 1)
        .ok_or_else(|| unexpected("presence set", &reply))
}

/// Removes a member; returns its data when it was present.
pub(crate) async fn presence_remove(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    channel: &str,
    connection_id: &str,
) -> Result<Option<Bytes>, CallError> {
    let reply: Value = PRESENCE_REMOVE
        .key(keys.presence(channel))
        .key(keys.presence_expiry(channel))
        .arg(connection_id)
        .arg(keys.pubsub(channel))
        .invoke_async(conn)
        .await?;
    match reply {
        Value::Nil | Value::Boolean(false) => Ok(None),
        other => bulk(other)
            .map(|data| Some(Bytes::from(data)))
            .ok_or_else(|| CallError::Protocol("presence remove reply is not data".into())),
    }
}

/// Refreshes a member's expiry.
pub(crate) async fn presence_touch(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    limits: &Limits,
    channel: &str,
    connection_id: &str,
) -> Result<(), CallError> {
    let _: Value = PRESENCE_TOUCH
        .key(keys.presence(channel))
        .key(keys.presence_expiry(channel))
        .arg(connection_id)
        .arg(limits.presence_ttl_ms)
        .arg(limits.presence_key_ttl_ms)
        .invoke_async(conn)
        .await?;
    Ok(())
}

/// Removes expired members (publishing their leave); returns the rest when `list`.
pub(crate) async fn presence_sweep(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
    channel: &str,
    list: bool,
) -> Result<Vec<(Arc<str>, Bytes)>, CallError> {
    let reply: Value = PRESENCE_SWEEP
        .key(keys.presence(channel))
        .key(keys.presence_expiry(channel))
        .arg(keys.pubsub(channel))
        .arg(if list { "1" } else { "0" })
        .invoke_async(conn)
        .await?;
    if !list {
        return Ok(Vec::new());
    }
    let Value::Array(flat) = reply else {
        return Err(unexpected("presence list", &reply));
    };
    let mut members = Vec::with_capacity(flat.len() / 2);
    let mut flat = flat.into_iter();
    while let (Some(id), Some(data)) = (flat.next(), flat.next()) {
        let id = bulk(id).and_then(|b| String::from_utf8(b).ok());
        match (id, bulk(data)) {
            (Some(id), Some(data)) => members.push((id.into(), Bytes::from(data))),
            _ => return Err(CallError::Protocol("malformed presence member".into())),
        }
    }
    Ok(members)
}
