//! The platform's durable state: the newest ticket and each mini program's refresh token, under keys that never hold
//! a secret, in a [`DurableStore`](crate::token::DurableStore) (never with a TTL). Every operation is bounded by the deadline.

use std::time::Instant;

use super::Platform;
use crate::error::{StoreFailure, TokenError};
use crate::token::within;

/// A stored ticket, kept as `<CreateTime>|<ticket>` so the newest wins.
pub(super) struct StoredTicket {
    pub create_time: i64,
    pub value: String,
}

impl StoredTicket {
    pub fn parse(stored: &str) -> Option<StoredTicket> {
        let (time, value) = stored.split_once('|')?;
        Some(StoredTicket { create_time: time.parse().ok()?, value: value.to_owned() })
    }

    fn encode(&self) -> String {
        format!("{}|{}", self.create_time, self.value)
    }
}

/// A store operation within the deadline.
pub(crate) async fn stored<T>(
    deadline: Instant,
    op: impl std::future::Future<Output = Result<T, StoreFailure>>,
) -> Result<T, StoreFailure> {
    within(deadline, op).await.unwrap_or_else(|| Err(StoreFailure("no time left".to_owned())))
}

impl Platform {
    pub(super) fn ticket_key(&self) -> String {
        format!("wx:platform:{}:ticket", self.appid)
    }

    pub(super) fn refresh_prefix(&self) -> String {
        format!("wx:platform:{}:refresh:", self.appid)
    }

    pub(super) fn refresh_key(&self, authorizer: &str) -> String {
        format!("{}{authorizer}", self.refresh_prefix())
    }

    /// The newest ticket stored, if any.
    pub(super) async fn ticket(&self, deadline: Instant) -> Result<Option<StoredTicket>, StoreFailure> {
        let stored_now = stored(deadline, self.durable.get(&self.ticket_key())).await?;
        Ok(stored_now.as_deref().and_then(StoredTicket::parse))
    }

    /// Keeps `ticket` unless a newer one is stored; says whether it is now the newest.
    pub(super) async fn store_ticket(&self, ticket: &StoredTicket, deadline: Instant) -> Result<bool, StoreFailure> {
        let newer_stored = |current: Option<&str>| {
            current.and_then(StoredTicket::parse).is_some_and(|c| c.create_time > ticket.create_time)
        };
        let encoded = ticket.encode();
        self.replace(&self.ticket_key(), |current| (!newer_stored(current)).then_some(encoded.as_str()), deadline).await
    }

    /// Sets `key` to `value`, whatever it held.
    pub(super) async fn put(&self, key: &str, value: &str, deadline: Instant) -> Result<(), StoreFailure> {
        self.replace(key, |_| Some(value), deadline).await.map(|_| ())
    }

    /// Sets `key` to what `choose` makes of its current value (`None`: leave it); says whether it was set. Another
    /// instance may write between our read and our swap: then it reads again, a few times.
    async fn replace<'v>(
        &self,
        key: &str,
        choose: impl Fn(Option<&str>) -> Option<&'v str>,
        deadline: Instant,
    ) -> Result<bool, StoreFailure> {
        for _ in 0..3 {
            let current = stored(deadline, self.durable.get(key)).await?;
            let Some(value) = choose(current.as_deref()) else { return Ok(false) };
            if stored(deadline, self.durable.swap(key, current.as_deref(), value)).await? {
                return Ok(true);
            }
        }
        Err(StoreFailure(format!("{key} kept changing under us")))
    }

    /// Forgets a mini program that withdrew: its refresh token and its access token.
    pub(super) async fn forget(&self, authorizer: &str, deadline: Instant) -> Result<(), StoreFailure> {
        let key = self.refresh_key(authorizer);
        if let Some(current) = stored(deadline, self.durable.get(&key)).await? {
            stored(deadline, self.durable.delete_if(&key, &current)).await?;
        }
        self.cell(authorizer).forget(deadline).await;
        Ok(())
    }

    /// The authorised mini programs this platform holds a refresh token for.
    pub async fn authorized(&self, deadline: Instant) -> Result<Vec<String>, TokenError> {
        let prefix = self.refresh_prefix();
        let keys = stored(deadline, self.durable.keys(&prefix)).await?;
        Ok(keys.into_iter().filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned)).collect())
    }
}
