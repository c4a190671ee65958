//! The token store on Redis (ElastiCache and friends): one token per appid and endpoint for the whole fleet.
//!
//! Values are `<expires_at_ms>|<token>` under `wx:token:<endpoint>:<appid>`, with a TTL that ends when the token is due
//! for refresh; the refresh lease is `<key>:lock` (SET NX PX, a random holder value, released by compare-and-delete).
//! Every operation is bounded by a short timeout, and after a failure Redis is left alone for a moment: the function
//! then works from its own memory, and comes back to Redis by itself.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisError, Script};

use super::store::{lock_key, Breaker, DurableStore, Lock, StoreFailure, TokenStore};
use super::{CachedToken, REFRESH_MARGIN};
use crate::clock::now_ms;

/// The longest any one Redis operation may take.
pub const OP_TIMEOUT: Duration = Duration::from_millis(300);

const REMOVE_IF: &str = r"
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '|', 1, true)
  if sep and string.sub(v, sep + 1) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
  end
end
return 0";

const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// ARGV: whether a value is expected (`1`/`0`), the expected value, the new value, its lifetime in ms (`0`: none).
const SWAP: &str = r"
local v = redis.call('GET', KEYS[1])
if (v == false and ARGV[1] == '0') or (v ~= false and ARGV[1] == '1' and v == ARGV[2]) then
  if ARGV[4] == '0' then
    redis.call('SET', KEYS[1], ARGV[3])
  else
    redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  end
  return 1
end
return 0";

/// Keys SCAN looks at per call.
const SCAN_COUNT: usize = 1000;
/// `MGET` this many keys at a time.
const MGET_CHUNK: usize = 200;

/// The fleet's token cache and a platform's durable state in Redis (or Valkey): atomic compare-and-set through Lua
/// scripts, every call bounded, a short rest after a failure so a dead Redis costs each invocation nothing.
pub struct RedisStore {
    redis: ConnectionManager,
    remove_if: Script,
    unlock: Script,
    swap: Script,
    /// The token cache's rest after a failure.
    breaker: Breaker,
}

impl RedisStore {
    /// Prepares the connection without making it: a cold start must not wait for (or fail on) Redis. Runs inside a
    /// Tokio runtime (the connection manager lives on it).
    pub fn new(url: &str) -> Result<RedisStore, StoreFailure> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreFailure("the Redis store needs a Tokio runtime".to_owned()));
        }
        let client = redis::Client::open(url).map_err(|e| StoreFailure(format!("not a Redis URL ({:?})", e.kind())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Breaker::BACKOFF);
        let redis = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreFailure(format!("cannot prepare the Redis connection ({:?})", e.kind())))?;
        Ok(RedisStore {
            redis,
            remove_if: Script::new(REMOVE_IF),
            unlock: Script::new(UNLOCK),
            swap: Script::new(SWAP),
            breaker: Breaker::default(),
        })
    }

    /// Runs `op` within the timeout, once more at once if the connection had broken (the manager reconnects), and
    /// marks Redis as resting after a failure.
    async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T, StoreFailure>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        self.breaker.check()?;
        self.attempt(what, op).await
    }

    /// Runs a compare-then-delete `script` (`key` goes only while it holds `value`): whether it went.
    async fn delete_holding(
        &self,
        what: &'static str,
        script: &Script,
        key: &str,
        value: &str,
        through: Through,
    ) -> Result<bool, StoreFailure> {
        let op = |mut r: ConnectionManager| {
            let mut call = script.key(key);
            call.arg(value);
            async move { call.invoke_async::<i64>(&mut r).await }
        };
        let deleted = match through {
            Through::Breaker => self.run(what, op).await?,
            Through::Always => self.attempt(what, op).await?,
        };
        Ok(deleted == 1)
    }

    async fn attempt<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T, StoreFailure>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        let attempt = || tokio::time::timeout(OP_TIMEOUT, op(self.redis.clone()));
        let outcome = match attempt().await {
            Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() => attempt().await,
            first => first,
        };
        let why = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => format!("{:?} ({})", e.kind(), e.category()),
            Err(_) => format!("no answer within {} ms", OP_TIMEOUT.as_millis()),
        };
        self.breaker.rest();
        tracing::warn!(op = what, error = %why, "Redis token cache unavailable; using this instance's own cache");
        Err(StoreFailure(why))
    }
}

/// Whether a call waits out the breaker (the token cache's: it has a local fallback) or is always tried (the durable
/// values': they have none).
#[derive(Clone, Copy)]
enum Through {
    Breaker,
    Always,
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn load(&self, key: &str) -> Result<Option<CachedToken>, StoreFailure> {
        let stored: Option<String> = self.run("load", |mut r| async move { r.get(key).await }).await?;
        Ok(stored.and_then(|v| {
            let (expires, token) = v.split_once('|')?;
            Some(CachedToken { value: token.to_owned().into(), expires_at_ms: expires.parse().ok()? })
        }))
    }

    async fn save(&self, key: &str, token: &CachedToken) -> Result<(), StoreFailure> {
        let keep_ms = token.expires_at_ms.saturating_sub(now_ms()).saturating_sub(REFRESH_MARGIN.as_millis() as u64);
        if keep_ms == 0 {
            return Ok(());
        }
        use secrecy::ExposeSecret;
        let value = format!("{}|{}", token.expires_at_ms, token.value.expose_secret());
        self.run("save", |mut r| {
            let value = value.clone();
            async move { r.pset_ex::<_, _, ()>(key, value, keep_ms).await }
        })
        .await
    }

    async fn remove_if(&self, key: &str, value: &str) -> Result<bool, StoreFailure> {
        self.delete_holding("remove_if", &self.remove_if, key, value, Through::Breaker).await
    }

    async fn lock(&self, key: &str, lease: Duration) -> Result<Lock, StoreFailure> {
        let holder = format!("{:032x}", rand::random::<u128>());
        let lock_key = lock_key(key);
        let lease_ms = lease.as_millis() as u64;
        let taken: Option<String> = self
            .run("lock", |mut r| {
                let (lock_key, holder) = (lock_key.clone(), holder.clone());
                let options = redis::SetOptions::default()
                    .conditional_set(redis::ExistenceCheck::NX)
                    .with_expiration(redis::SetExpiry::PX(lease_ms));
                async move { r.set_options(lock_key, holder, options).await }
            })
            .await?;
        Ok(if taken.is_some() { Lock::Held(holder) } else { Lock::Taken })
    }

    async fn unlock(&self, key: &str, holder: &str) -> Result<(), StoreFailure> {
        self.delete_holding("unlock", &self.unlock, &lock_key(key), holder, Through::Breaker).await.map(|_| ())
    }
}

/// Durable values are plain keys without a TTL (so a Redis with `maxmemory-policy volatile-*` never evicts them).
/// They are tried even while the token cache rests: a durable value has no local copy to fall back on, so one slow
/// token-cache operation must not fail the next ticket or refresh-token read.
#[async_trait]
impl DurableStore for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreFailure> {
        self.attempt("get", |mut r| async move { r.get(key).await }).await
    }

    async fn swap(&self, key: &str, expected: Option<&str>, value: &str) -> Result<bool, StoreFailure> {
        self.swap_for(key, expected, value, 0).await
    }

    async fn swap_expiring(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
        keep: Duration,
    ) -> Result<bool, StoreFailure> {
        self.swap_for(key, expected, value, (keep.as_millis() as u64).max(1)).await
    }

    async fn delete_if(&self, key: &str, expected: &str) -> Result<bool, StoreFailure> {
        self.delete_holding("delete_if", &self.unlock, key, expected, Through::Always).await
    }

    async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreFailure> {
        // Our keys hold appids only ([A-Za-z0-9_-]), so the prefix has no glob characters to escape.
        let pattern = format!("{prefix}*");
        let mut keys: Vec<String> = self
            .attempt("keys", |mut r| {
                let pattern = pattern.clone();
                async move {
                    let mut found = Vec::new();
                    // A thousand keys a step, not SCAN's default ten: a rollout's thousands of records in a few calls.
                    let mut scan = redis::cmd("SCAN");
                    scan.cursor_arg(0).arg("MATCH").arg(&pattern).arg("COUNT").arg(SCAN_COUNT);
                    let mut iter: redis::AsyncIter<String> = scan.iter_async(&mut r).await?;
                    while let Some(key) = iter.next_item().await {
                        found.push(key?);
                    }
                    Ok(found)
                }
            })
            .await?;
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreFailure> {
        let mut values = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MGET_CHUNK) {
            let chunk_values: Vec<Option<String>> =
                self.attempt("get_many", |mut r| async move { r.mget(chunk).await }).await?;
            values.extend(chunk_values);
        }
        Ok(values)
    }
}

impl RedisStore {
    /// The swap script, the value living `keep_ms` (0: for ever).
    async fn swap_for(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
        keep_ms: u64,
    ) -> Result<bool, StoreFailure> {
        let swapped: i64 = self
            .attempt("swap", |mut r| {
                let mut call = self.swap.key(key);
                call.arg(if expected.is_some() { "1" } else { "0" }).arg(expected.unwrap_or_default()).arg(value);
                call.arg(keep_ms);
                async move { call.invoke_async(&mut r).await }
            })
            .await?;
        Ok(swapped == 1)
    }
}
