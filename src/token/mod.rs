//! Access tokens: fetched lazily, shared by concurrent callers (single flight), refreshed 5 minutes before expiry,
//! dropped after a token error only if still the cached one, never force-refreshed; failures are not cached.

mod store;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};

use crate::config::{Config, Credentials, TokenEndpoint};
use crate::error::{Error, Failure};
use crate::wechat::client::time_left;
use crate::wechat::{codes, errcode, errmsg, Answer, WeChatClient};

/// What a broken token answer is shown as, in place of its body.
const WITHHELD: &str = "(the token endpoint's answer, withheld: it is not a token answer)";

pub use store::{MemoryStore, TokenStore};

/// Refresh a token when it has less than this left (WeChat's own overlap).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A token with its expiry in unix milliseconds (wall clock, so a shared store means the same for every instance).
#[derive(Clone)]
pub struct CachedToken {
    pub value: SecretString,
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

/// Where tokens come from.
enum Source {
    Endpoint {
        endpoint: TokenEndpoint,
        appid: String,
        secret: SecretString,
    },
    /// A token configured as it is: never fetched, never refreshed.
    Fixed(SecretString),
}

pub struct TokenProvider {
    source: Source,
    store: Arc<dyn TokenStore>,
    /// The store key: per appid and endpoint, never containing the secret.
    key: String,
    /// Held by the one caller that fetches; the others wait on it, then find the fresh token in the store.
    refresh: tokio::sync::Mutex<()>,
}

impl TokenProvider {
    pub fn new(config: &Config, store: Arc<dyn TokenStore>) -> TokenProvider {
        let (source, key) = match &config.credentials {
            Credentials::Fixed { token } => (Source::Fixed(token.clone()), "fixed".to_owned()),
            Credentials::App { appid, secret } => {
                let endpoint = config.token_endpoint;
                let kind = match endpoint {
                    TokenEndpoint::Stable => "stable",
                    TokenEndpoint::Classic => "classic",
                };
                let source = Source::Endpoint { endpoint, appid: appid.clone(), secret: secret.clone() };
                (source, format!("wx:token:{kind}:{appid}"))
            }
        };
        TokenProvider { source, store, key, refresh: tokio::sync::Mutex::new(()) }
    }

    /// Whether a token error can be cured by fetching another token.
    pub fn can_refresh(&self) -> bool {
        !matches!(self.source, Source::Fixed(_))
    }

    /// A token good for at least the refresh margin (or the fixed one), fetched at most once however many callers
    /// ask at the same time.
    pub async fn token(&self, client: &WeChatClient, deadline: Instant) -> Result<SecretString, Error> {
        let (endpoint, appid, secret) = match &self.source {
            Source::Fixed(token) => return Ok(token.clone()),
            Source::Endpoint { endpoint, appid, secret } => (*endpoint, appid, secret),
        };
        if let Some(t) = self.store.load(&self.key).await.filter(|t| t.fresh(now_ms())) {
            return Ok(t.value);
        }
        // Waiting for another caller's fetch is bounded like an exchange: it ends in time to answer.
        let timed_out = || Error::token_failure(Failure::Timeout);
        let patience = time_left(deadline).ok_or_else(timed_out)?;
        let _turn = tokio::time::timeout(patience, self.refresh.lock()).await.map_err(|_| timed_out())?;
        // Whoever held the lock before us may have fetched already.
        if let Some(t) = self.store.load(&self.key).await.filter(|t| t.fresh(now_ms())) {
            return Ok(t.value);
        }
        let answer = match endpoint {
            TokenEndpoint::Stable => client.stable_token(appid, secret, deadline).await,
            TokenEndpoint::Classic => client.classic_token(appid, secret, deadline).await,
        };
        let answer = answer.map_err(|failure| match failure {
            // The body might hold a token (a proxy's wrapper, a stray BOM): never quote it.
            Failure::InvalidJson(_) => Error::token_failure(Failure::InvalidJson(WITHHELD.to_owned())),
            other => Error::token_failure(other),
        })?;
        let fetched = parse_token(&answer, now_ms())?;
        self.store.save(&self.key, &fetched).await;
        Ok(fetched.value)
    }

    /// After WeChat refused `stale` as invalid or expired: forget it, unless the cache already holds another.
    pub async fn invalidate(&self, stale: &SecretString) {
        self.store.remove_if(&self.key, stale.expose_secret()).await;
    }
}

fn parse_token(answer: &Answer, now_ms: u64) -> Result<CachedToken, Error> {
    let code = errcode(answer);
    if code != codes::OK {
        return Err(Error::Token { method: "", errcode: code, errmsg: errmsg(answer) });
    }
    let value = answer.get("access_token").and_then(|v| v.as_str()).filter(|v| !v.is_empty());
    let expires_in = answer.get("expires_in").and_then(|v| v.as_u64());
    match (value, expires_in) {
        (Some(value), Some(expires_in)) => {
            Ok(CachedToken { value: value.to_owned().into(), expires_at_ms: now_ms + expires_in.saturating_mul(1000) })
        }
        _ => Err(Error::token_failure(Failure::InvalidJson(WITHHELD.to_owned()))),
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(v: serde_json::Value) -> Answer {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_token_answer_becomes_a_cached_token_and_errors_become_token_errors() {
        let t = parse_token(&answer(json!({"access_token":"abc","expires_in":7200})), 1_000).unwrap();
        assert_eq!((t.value.expose_secret(), t.expires_at_ms), ("abc", 7_201_000));
        assert!(t.fresh(7_201_000 - 300_001));
        assert!(!t.fresh(7_201_000 - 300_000));
        let e = parse_token(&answer(json!({"errcode":40125,"errmsg":"invalid appsecret rid: x"})), 0).unwrap_err();
        assert_eq!((e.kind(), e.err_code()), ("TokenError", 40125));
        let e = parse_token(&answer(json!({"expires_in":7200})), 0).unwrap_err();
        assert_eq!((e.kind(), e.err_code()), ("TokenError", -601001));
        assert!(!format!("{t:?}").contains("abc"));
    }
}
