//! Rollouts: one cloud-call event (an `apply`, an `update`…) across every mini program that authorised a third-party
//! platform, or a given list of them, through the platform's rollout queue (SQS).
//!
//! `start` (`control`) records the rollout in the platform's store and puts one message per target on the queue;
//! SQS hands the messages back to the function in batches (an event source mapping, at a bounded concurrency), and
//! each message runs its target's event through the one call path (`target`), at most one change per target
//! whatever is redelivered; `status` counts the targets by state, `report` lists them. Everything a rollout keeps
//! (`record`) lives in the store with a TTL (30 days by default).

mod control;
mod record;
mod target;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aws::sqs::Queue;
use crate::config::RolloutSettings;
use crate::error::{sdk_codes, Error, StoreFailure};
use crate::platform::stored;
use crate::token::DurableStore;
pub(crate) use control::Control;
use record::is_rollout_id;

/// A third-party platform's rollouts: its store, its queue, its settings.
pub struct Rollouts {
    durable: Arc<dyn DurableStore>,
    queue: Option<Queue>,
    /// The platform's appid: every key is under it.
    platform: String,
    settings: RolloutSettings,
}

impl std::fmt::Debug for Rollouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rollouts").field("platform", &self.platform).field("queue", &self.queue).finish_non_exhaustive()
    }
}

impl Rollouts {
    /// The rollouts of platform `platform`, kept in `durable`, sent to the queue of `settings` (reached and signed
    /// as `env` says: the process's environment).
    pub(crate) fn new(
        platform: &str,
        durable: Arc<dyn DurableStore>,
        settings: &RolloutSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Rollouts, Error> {
        let queue = match &settings.queue_url {
            Some(url) => Some(Queue::new(url, env).map_err(|e| Error::Config(format!("WX_ROLLOUT_QUEUE_URL: {e}")))?),
            None => None,
        };
        Ok(Rollouts { durable, queue, platform: platform.to_owned(), settings: settings.clone() })
    }

    /// How many records of one queue batch run at once.
    pub(crate) fn batch_concurrency(&self) -> usize {
        self.settings.batch_concurrency
    }

    fn keep(&self) -> Duration {
        Duration::from_secs(u64::from(self.settings.keep_days) * 86_400)
    }

    async fn read(&self, key: &str, deadline: Instant) -> Result<Option<String>, StoreFailure> {
        stored(deadline, self.durable.get(key)).await
    }

    /// Sets `key` to `value` if it holds `expected` (kept for the rollout's TTL); whether it did.
    async fn write(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
        deadline: Instant,
    ) -> Result<bool, StoreFailure> {
        stored(deadline, self.durable.swap_expiring(key, expected, value, self.keep())).await
    }
}

/// The store failed a rollout's `method` (empty for a queue record's line).
fn store_unavailable(method: &'static str, failure: StoreFailure) -> Error {
    let detail = format!("the platform's store is unavailable: {failure}");
    Error::Rollout { method, errcode: sdk_codes::STORE_UNAVAILABLE, detail }
}
