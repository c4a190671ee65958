//! Where tokens are kept between invocations.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::CachedToken;

/// A token cache. Implementations must never fail an invocation: an unavailable store behaves as an empty one.
#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn load(&self, key: &str) -> Option<CachedToken>;
    async fn save(&self, key: &str, token: &CachedToken);
    /// Removes the token under `key` only if its value is still `value`; says whether it did.
    async fn remove_if(&self, key: &str, value: &str) -> bool;
}

/// The container's own memory.
#[derive(Default)]
pub struct MemoryStore {
    tokens: Mutex<HashMap<String, CachedToken>>,
}

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedToken>> {
        // A panic elsewhere while holding the lock leaves a map of whole entries: still usable.
        self.tokens.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self, key: &str) -> Option<CachedToken> {
        self.map().get(key).cloned()
    }

    async fn save(&self, key: &str, token: &CachedToken) {
        self.map().insert(key.to_owned(), token.clone());
    }

    async fn remove_if(&self, key: &str, value: &str) -> bool {
        let mut map = self.map();
        if map.get(key).is_some_and(|t| t.value.expose_secret() == value) {
            map.remove(key);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn remove_if_spares_a_token_that_replaced_the_stale_one() {
        let store = MemoryStore::default();
        let token = |v: &str| CachedToken { value: v.to_owned().into(), expires_at_ms: 1 };
        store.save("k", &token("new")).await;
        assert!(!store.remove_if("k", "old").await);
        assert!(store.load("k").await.is_some());
        assert!(store.remove_if("k", "new").await);
        assert!(store.load("k").await.is_none());
    }
}
