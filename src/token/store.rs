//! A token store shared by every instance of the function (the fleet), behind a small trait; and what every such
//! store does alike: where a token's refresh lease is kept ([`lock_key`]), and the short rest after a failure
//! ([`Breaker`]) that lets the function work from its own memory while the store is down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::CachedToken;
use crate::clock::now_ms;
pub use crate::error::StoreFailure;

/// The refresh lease of the token under `key`: next to it, so a store's keys need no other naming.
pub(super) fn lock_key(key: &str) -> String {
    format!("{key}:lock")
}

/// The rest a store's token cache takes after a failure: for [`Breaker::BACKOFF`] its token operations fail at once
/// (the function then works from its own memory) rather than each costing an invocation a timeout; then the store is
/// tried again, by itself. Durable operations do not consult it: they have no local copy to fall back on.
#[derive(Default)]
pub(super) struct Breaker {
    /// Unix ms before which the store is not tried: a number, as an atomic holds one and not an `Instant`.
    resting_until: AtomicU64,
}

impl Breaker {
    /// How long the store rests after a failure.
    pub(super) const BACKOFF: Duration = Duration::from_secs(1);

    /// The failure a token operation ends in while the store rests, before trying it.
    pub(super) fn check(&self) -> Result<(), StoreFailure> {
        if now_ms() < self.resting_until.load(Ordering::Relaxed) {
            return Err(StoreFailure("resting after a failure".to_owned()));
        }
        Ok(())
    }

    /// After a failure: rest from now on.
    pub(super) fn rest(&self) {
        self.resting_until.store(now_ms() + Breaker::BACKOFF.as_millis() as u64, Ordering::Relaxed);
    }
}

/// The outcome of asking to be the one instance that refreshes a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lock {
    /// This instance holds the lease; release it with this holder value.
    Held(String),
    /// Another instance holds it: wait for its token.
    Taken,
}

/// The fleet's token cache: tokens with their expiry, and the lease that lets one instance refresh at a time.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// The token under `key`, if one is kept.
    async fn load(&self, key: &str) -> Result<Option<CachedToken>, StoreFailure>;
    /// Keeps `token` until it is due for refresh.
    async fn save(&self, key: &str, token: &CachedToken) -> Result<(), StoreFailure>;
    /// Removes the token under `key` only if it is still `value` (atomically); says whether it did.
    async fn remove_if(&self, key: &str, value: &str) -> Result<bool, StoreFailure>;
    /// Tries to take the refresh lease of `key` for `lease`.
    async fn lock(&self, key: &str, lease: Duration) -> Result<Lock, StoreFailure>;
    /// Releases the lease, only if `holder` still holds it.
    async fn unlock(&self, key: &str, holder: &str) -> Result<(), StoreFailure>;
}

/// Values that must outlive every cache: a platform's newest ticket and its mini programs' refresh tokens. Nothing
/// here expires; a value goes only when it is replaced or deleted.
#[async_trait]
pub trait DurableStore: Send + Sync {
    /// The value of `key`, if it is set.
    async fn get(&self, key: &str) -> Result<Option<String>, StoreFailure>;
    /// Sets `key` to `value` only if it holds `expected` now (`None`: if it is absent), atomically; says whether.
    async fn swap(&self, key: &str, expected: Option<&str>, value: &str) -> Result<bool, StoreFailure>;
    /// [`DurableStore::swap`] for a value that goes by itself `keep` after this write (a rollout's records): until
    /// then it is read as any other; after, as absent.
    async fn swap_expiring(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
        keep: Duration,
    ) -> Result<bool, StoreFailure>;
    /// Deletes `key` only if it holds `expected` now; says whether.
    async fn delete_if(&self, key: &str, expected: &str) -> Result<bool, StoreFailure>;
    /// The keys that start with `prefix`, sorted.
    async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreFailure>;
    /// The values of `keys`, in their order (`None` where absent): a few calls for a rollout's thousands of records,
    /// not one each.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreFailure>;
}

/// The durable store of one container: enough for one instance (and for tests); a fleet needs Redis or DynamoDB, or the ticket
/// pushed to one instance is unknown to the others.
#[derive(Default)]
pub struct MemoryStore {
    /// Each value, and when it goes (unix ms) if it does. A value past its time reads as absent and stays until
    /// written over: nothing walks the map on each call.
    values: std::sync::Mutex<std::collections::BTreeMap<String, (String, Option<u64>)>>,
}

/// An entry's value, unless it is past its time at `now`.
fn live(entry: &(String, Option<u64>), now: u64) -> Option<&str> {
    entry.1.is_none_or(|until| until > now).then_some(entry.0.as_str())
}

impl MemoryStore {
    fn values(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, (String, Option<u64>)>> {
        self.values.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn swap_until(&self, key: &str, expected: Option<&str>, value: &str, until: Option<u64>) -> bool {
        let mut values = self.values();
        if values.get(key).and_then(|entry| live(entry, now_ms())) != expected {
            return false;
        }
        values.insert(key.to_owned(), (value.to_owned(), until));
        true
    }
}

#[async_trait]
impl DurableStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreFailure> {
        Ok(self.values().get(key).and_then(|entry| live(entry, now_ms())).map(str::to_owned))
    }

    async fn swap(&self, key: &str, expected: Option<&str>, value: &str) -> Result<bool, StoreFailure> {
        Ok(self.swap_until(key, expected, value, None))
    }

    async fn swap_expiring(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
        keep: Duration,
    ) -> Result<bool, StoreFailure> {
        Ok(self.swap_until(key, expected, value, Some(now_ms() + keep.as_millis() as u64)))
    }

    async fn delete_if(&self, key: &str, expected: &str) -> Result<bool, StoreFailure> {
        let mut values = self.values();
        if values.get(key).and_then(|entry| live(entry, now_ms())) != Some(expected) {
            return Ok(false);
        }
        values.remove(key);
        Ok(true)
    }

    async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreFailure> {
        let now = now_ms();
        Ok(self
            .values()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, entry)| live(entry, now).is_some())
            .map(|(k, _)| k.clone())
            .collect())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreFailure> {
        let (values, now) = (self.values(), now_ms());
        Ok(keys.iter().map(|key| values.get(key).and_then(|entry| live(entry, now)).map(str::to_owned)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_containers_expiring_values_go_by_themselves_and_many_are_read_in_order() {
        let store = MemoryStore::default();
        assert!(store.swap_expiring("r:b", None, "2", Duration::from_millis(30)).await.unwrap());
        assert!(store.swap("r:a", None, "1").await.unwrap());
        assert!(store.swap("s:a", None, "other").await.unwrap());
        let keys = ["r:b", "r:c", "r:a"].map(str::to_owned);
        assert_eq!(store.get_many(&keys).await.unwrap(), [Some("2".to_owned()), None, Some("1".to_owned())]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.get("r:b").await.unwrap(), None);
        assert_eq!(store.keys("r:").await.unwrap(), ["r:a"]);
        assert!(store.swap_expiring("r:b", None, "3", Duration::from_secs(1)).await.unwrap(), "gone is absent");
    }

    #[test]
    fn the_breaker_refuses_only_while_it_rests_and_the_lease_sits_next_to_its_token() {
        let breaker = Breaker::default();
        assert!(breaker.check().is_ok());
        breaker.rest();
        assert_eq!(breaker.check().unwrap_err().0, "resting after a failure");
        assert_eq!(lock_key("wx:token:stable:wx0123456789abcdef"), "wx:token:stable:wx0123456789abcdef:lock");
    }
}
