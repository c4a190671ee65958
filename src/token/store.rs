//! A token store shared by every instance of the function (the fleet), behind a small trait.

use std::time::Duration;

use async_trait::async_trait;

use super::CachedToken;

/// The shared store could not be used; the caller carries on without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// The outcome of asking to be the one instance that refreshes a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lock {
    /// This instance holds the lease; release it with this holder value.
    Held(String),
    /// Another instance holds it: wait for its token.
    Taken,
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn load(&self, key: &str) -> Result<Option<CachedToken>, Unavailable>;
    /// Keeps `token` until it is due for refresh.
    async fn save(&self, key: &str, token: &CachedToken) -> Result<(), Unavailable>;
    /// Removes the token under `key` only if it is still `value` (atomically); says whether it did.
    async fn remove_if(&self, key: &str, value: &str) -> Result<bool, Unavailable>;
    /// Tries to take the refresh lease of `key` for `lease`.
    async fn lock(&self, key: &str, lease: Duration) -> Result<Lock, Unavailable>;
    /// Releases the lease, only if `holder` still holds it.
    async fn unlock(&self, key: &str, holder: &str) -> Result<(), Unavailable>;
}
