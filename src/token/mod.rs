//! Access tokens: fetched lazily, shared by concurrent callers (single flight), refreshed 5 minutes before expiry,
//! dropped after a token error only if still the cached one, never force-refreshed; failures are not cached.

mod dynamodb;
mod redis;
mod store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::clock::now_ms;
use crate::config::TokenEndpoint;
use crate::error::{Failure, TokenError};
use crate::wechat::client::{time_left, WITHHELD};
use crate::wechat::{errcode, errmsg, Answer, WeChatClient};
use wechat_wire::codes;

pub use dynamodb::DynamoStore;
pub use redis::RedisStore;
pub use store::{DurableStore, Lock, MemoryStore, StoreFailure, TokenStore};

/// Refresh a token when it has less than this left (WeChat's own overlap).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A token with its expiry in unix milliseconds (wall clock, so a shared store means the same for every instance).
#[derive(Clone)]
pub struct CachedToken {
    /// The token itself.
    pub value: SecretString,
    /// When WeChat stops taking it, in unix milliseconds.
    pub expires_at_ms: u64,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken").field("value", &"[REDACTED]").field("expires_at_ms", &self.expires_at_ms).finish()
    }
}

impl CachedToken {
    fn fresh(&self, now_ms: u64) -> bool {
        self.expires_at_ms.saturating_sub(now_ms) > REFRESH_MARGIN.as_millis() as u64
    }
}

/// One token shared by every caller of this container (and, with a shared store, of the fleet): fetched by one of
/// them at a time, kept until 5 minutes before it expires, forgotten after WeChat refused it. What fetches it is the
/// caller's: an app token, a platform's component token, an authorizer token.
pub(crate) struct TokenCell {
    /// The key in the shared store, never containing a secret.
    key: String,
    /// This container's copy, used first; the only one without a shared store, and the fallback when it fails.
    local: std::sync::Mutex<Option<CachedToken>>,
    shared: Option<Arc<dyn TokenStore>>,
    /// Held by the one caller in this container that refreshes; the others wait on it, then find its token.
    refresh: tokio::sync::Mutex<()>,
}

/// Whether a token came from a cache (this instance's, the fleet's, or a peer's fresh fetch) or from WeChat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// From this container's copy, the fleet's store, or another caller's fetch.
    Cached,
    /// Fetched from WeChat by this call.
    Fetched,
}

/// The longest lease on the fleet's refresh (a holder's lease otherwise lasts as long as its invocation may).
pub(crate) const MAX_LEASE: Duration = Duration::from_secs(30);
/// The longest an instance waits for another's refresh before fetching for itself (at most half its time, too).
pub(crate) const PEER_WAIT: Duration = Duration::from_secs(5);
const PEER_POLL: Duration = Duration::from_millis(25);

/// What the fleet gave: its token, the lease to fetch one, or nothing (fetch without the fleet).
enum Turn {
    Token(CachedToken),
    Lease(String),
    Alone,
}

/// `op`, if it finishes in time to answer; a shared-store operation never costs the deadline.
pub(crate) async fn within<T>(deadline: Instant, op: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(time_left(deadline)?, op).await.ok()
}

impl TokenCell {
    /// A cell stored under `key` in `shared`, the fleet's store, if there is one.
    pub fn new(key: String, shared: Option<Arc<dyn TokenStore>>) -> TokenCell {
        TokenCell { key, local: Default::default(), shared, refresh: tokio::sync::Mutex::new(()) }
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Option<CachedToken>> {
        // A panic while holding the lock leaves a whole token or none: still usable.
        self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fresh_local(&self) -> Option<SecretString> {
        self.local().as_ref().filter(|t| t.fresh(now_ms())).map(|t| t.value.clone())
    }

    fn keep(&self, token: &CachedToken) -> SecretString {
        *self.local() = Some(token.clone());
        token.value.clone()
    }

    /// A token good for at least the refresh margin, fetched with `fetch` at most once however many callers ask at
    /// the same time: once per container, and with a shared store once per fleet. Says whether this call fetched it.
    pub async fn get<F, Fut>(&self, deadline: Instant, fetch: F) -> Result<(SecretString, Acquired), TokenError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<CachedToken, TokenError>>,
    {
        if let Some(token) = self.fresh_local() {
            return Ok((token, Acquired::Cached));
        }
        // Waiting for another caller's fetch is bounded like an exchange: it ends in time to answer.
        let timed_out = || TokenError::failure(Failure::Timeout);
        let patience = time_left(deadline).ok_or_else(timed_out)?;
        let _turn = tokio::time::timeout(patience, self.refresh.lock()).await.map_err(|_| timed_out())?;
        // Whoever held the lock before us may have fetched already.
        if let Some(token) = self.fresh_local() {
            return Ok((token, Acquired::Cached));
        }
        let turn = match &self.shared {
            Some(shared) => self.fleet_turn(shared.as_ref(), deadline).await,
            None => Turn::Alone,
        };
        let lease = match turn {
            Turn::Token(token) => return Ok((self.keep(&token), Acquired::Cached)),
            Turn::Lease(holder) => Some(holder),
            Turn::Alone => None,
        };
        let fetched = fetch().await;
        if let Some(shared) = &self.shared {
            if let Ok(token) = &fetched {
                let _ = within(deadline, shared.save(&self.key, token)).await;
            }
            if let Some(holder) = lease {
                let _ = within(deadline, shared.unlock(&self.key, &holder)).await;
            }
        }
        fetched.map(|token| (self.keep(&token), Acquired::Fetched))
    }

    /// Whether this container holds a token that is not yet due.
    pub fn holds_token(&self) -> bool {
        self.fresh_local().is_some()
    }

    /// Keeps a token that came without asking (an authorisation's first authorizer token), here and in the fleet.
    pub async fn offer(&self, token: &CachedToken, deadline: Instant) {
        self.keep(token);
        if let Some(shared) = &self.shared {
            let _ = within(deadline, shared.save(&self.key, token)).await;
        }
    }

    /// The fleet's token, or the lease to fetch it. While another instance holds the lease this waits for its token,
    /// taking the lease over if it is let go without one, for at most half the remaining time (and `PEER_WAIT`):
    /// then it fetches alone rather than hang. Without Redis (or time), it fetches alone at once.
    async fn fleet_turn(&self, shared: &dyn TokenStore, deadline: Instant) -> Turn {
        let remaining = time_left(deadline).unwrap_or_default();
        let give_up = Instant::now() + PEER_WAIT.min(remaining / 2);
        loop {
            match within(deadline, shared.load(&self.key)).await {
                Some(Ok(Some(token))) if token.fresh(now_ms()) => return Turn::Token(token),
                Some(Ok(_)) => {}
                _ => return Turn::Alone,
            }
            // The fetch cannot outlast this invocation, so neither need the lease.
            let lease = (time_left(deadline).unwrap_or_default() + Duration::from_secs(1)).min(MAX_LEASE);
            match within(deadline, shared.lock(&self.key, lease)).await {
                Some(Ok(Lock::Held(holder))) => {
                    // The previous holder may have saved its token and let go between our look and our lock.
                    if let Some(Ok(Some(token))) = within(deadline, shared.load(&self.key)).await {
                        if token.fresh(now_ms()) {
                            let _ = within(deadline, shared.unlock(&self.key, &holder)).await;
                            return Turn::Token(token);
                        }
                    }
                    return Turn::Lease(holder);
                }
                Some(Ok(Lock::Taken)) => {}
                _ => return Turn::Alone,
            }
            if Instant::now() + PEER_POLL >= give_up {
                tracing::warn!("no token from the instance refreshing it in time; fetching one here");
                return Turn::Alone;
            }
            tokio::time::sleep(PEER_POLL).await;
        }
    }

    /// After WeChat refused `stale` as invalid or expired: forget it, here and in the shared store, unless another
    /// token has already replaced it.
    pub async fn invalidate(&self, stale: &SecretString, deadline: Instant) {
        {
            let mut local = self.local();
            if local.as_ref().is_some_and(|t| t.value.expose_secret() == stale.expose_secret()) {
                *local = None;
            }
        }
        if let Some(shared) = &self.shared {
            let _ = within(deadline, shared.remove_if(&self.key, stale.expose_secret())).await;
        }
    }

    /// Forgets whatever token is held (its grant was withdrawn), here and in the shared store.
    pub async fn forget(&self, deadline: Instant) {
        self.local().take();
        if let Some(shared) = &self.shared {
            if let Some(Ok(Some(token))) = within(deadline, shared.load(&self.key)).await {
                let _ = within(deadline, shared.remove_if(&self.key, token.value.expose_secret())).await;
            }
        }
    }
}

/// Tokens of one mini program from one WeChat endpoint.
pub struct TokenProvider {
    endpoint: TokenEndpoint,
    appid: String,
    secret: SecretString,
    cell: TokenCell,
}

impl TokenProvider {
    /// A provider for `appid` and its secret on `endpoint`; `shared` is the fleet's store, if there is one.
    pub fn new(
        endpoint: TokenEndpoint,
        appid: &str,
        secret: SecretString,
        shared: Option<Arc<dyn TokenStore>>,
    ) -> TokenProvider {
        let kind = match endpoint {
            TokenEndpoint::Stable => "stable",
            TokenEndpoint::Classic => "classic",
        };
        let cell = TokenCell::new(format!("wx:token:{kind}:{appid}"), shared);
        TokenProvider { endpoint, appid: appid.to_owned(), secret, cell }
    }

    /// A token good for at least the refresh margin; see `TokenCell::get`.
    pub async fn token(
        &self,
        client: &WeChatClient,
        deadline: Instant,
    ) -> Result<(SecretString, Acquired), TokenError> {
        self.cell.get(deadline, || self.fetch(client, deadline)).await
    }

    async fn fetch(&self, client: &WeChatClient, deadline: Instant) -> Result<CachedToken, TokenError> {
        let answer = match self.endpoint {
            TokenEndpoint::Stable => client.stable_token(&self.appid, &self.secret, deadline).await,
            TokenEndpoint::Classic => client.classic_token(&self.appid, &self.secret, deadline).await,
        };
        let answer = answer.map_err(TokenError::failure)?;
        read_answer::<AppToken>(answer)?.cached(now_ms())
    }

    /// See `TokenCell::invalidate`.
    pub async fn invalidate(&self, stale: &SecretString, deadline: Instant) {
        self.cell.invalidate(stale, deadline).await
    }
}

/// A token endpoint's answer read into `T` (its fields by name), or the error it is: WeChat's errcode and errmsg,
/// or, for an answer of another shape, a failure that withholds its content (it may hold a secret).
pub(crate) fn read_answer<T: DeserializeOwned>(answer: Answer) -> Result<T, TokenError> {
    serde_json::from_value(Value::Object(succeeded(answer)?)).map_err(|_| withheld())
}

/// A token or component endpoint's answer if WeChat's errcode says it succeeded, else the error it is.
pub(crate) fn succeeded(answer: Answer) -> Result<Answer, TokenError> {
    match errcode(&answer) {
        codes::OK => Ok(answer),
        code => Err(TokenError::Refused { errcode: code, errmsg: errmsg(&answer) }),
    }
}

fn withheld() -> TokenError {
    TokenError::failure(Failure::InvalidJson(WITHHELD.to_owned()))
}

/// An app's token as `cgi-bin/token` and `cgi-bin/stable_token` give it.
#[derive(Debug, Deserialize)]
pub(crate) struct AppToken {
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl AppToken {
    /// The token, expiring `expires_in` seconds after `now_ms`.
    pub fn cached(self, now_ms: u64) -> Result<CachedToken, TokenError> {
        issued(self.access_token, self.expires_in, now_ms)
    }
}

/// A token and its lifetime as an answer gives them: both present, the token not empty, or the answer is refused.
pub(crate) fn issued(value: Option<String>, expires_in: Option<u64>, now_ms: u64) -> Result<CachedToken, TokenError> {
    match (value.filter(|v| !v.is_empty()), expires_in) {
        (Some(value), Some(expires_in)) => {
            Ok(CachedToken { value: value.into(), expires_at_ms: now_ms + expires_in.saturating_mul(1000) })
        }
        _ => Err(withheld()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_token_at(answer: &Answer, now_ms: u64) -> Result<CachedToken, TokenError> {
        read_answer::<AppToken>(answer.clone())?.cached(now_ms)
    }

    fn answer(v: serde_json::Value) -> Answer {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_token_answer_becomes_a_cached_token_and_errors_become_token_errors() {
        let t = parse_token_at(&answer(json!({"access_token":"abc","expires_in":7200})), 1_000).unwrap();
        assert_eq!((t.value.expose_secret(), t.expires_at_ms), ("abc", 7_201_000));
        assert!(t.fresh(7_201_000 - 300_001));
        assert!(!t.fresh(7_201_000 - 300_000));
        let e = parse_token_at(&answer(json!({"errcode":40125,"errmsg":"invalid appsecret rid: x"})), 0).unwrap_err();
        let e = e.for_method("getPluginList");
        assert_eq!((e.kind(), e.err_code()), ("TokenError", 40125));
        let e = parse_token_at(&answer(json!({"expires_in":7200})), 0).unwrap_err().for_method("getPluginList");
        assert_eq!((e.kind(), e.err_code()), ("TokenError", -601001));
        assert!(!format!("{t:?}").contains("abc"));
    }
}
