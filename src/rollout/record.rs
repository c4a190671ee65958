//! What a rollout keeps in the platform's store, and under which keys: the rollout itself, its targets in chunks,
//! and each target's outcome. Every key starts `wx:rollout:<platform>:<id>` and never holds a secret.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A target's state, as `status` counts it and `report` lists it. No record at all is `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    /// An attempt holds the target's lease: nothing else calls WeChat for it until the lease ends.
    Running,
    /// An attempt failed in a way worth retrying; the message comes back.
    Retrying,
    /// WeChat took the change, or the change was found made.
    Done,
    /// Final: WeChat's business error, an invalid event, or (`exhausted`) every attempt failed.
    Failed,
    /// WeChat's daily quota (45009): final for the day (China Standard Time); a later day's start sends it again.
    Quota,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Retrying => "retrying",
            State::Done => "done",
            State::Failed => "failed",
            State::Quota => "quota",
        }
    }
}

/// Every state `status` counts, `pending` first.
pub(crate) const STATES: [&str; 6] = ["pending", "running", "retrying", "done", "failed", "quota"];

/// One target's outcome, as stored (JSON) and reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TargetRecord {
    pub state: State,
    /// WeChat's errcode (or ours) of the last attempt; 0 for done.
    #[serde(default)]
    pub err_code: i64,
    /// Its errMsg, verbatim; empty for done.
    #[serde(default)]
    pub err_msg: String,
    /// Attempts that held the lease.
    #[serde(default)]
    pub attempts: u32,
    /// When this was written, unix ms.
    pub updated: u64,
    /// Running: when the lease ends, unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<u64>,
    /// Running: the attempt's random id, so that it knows its own claim when a write's answer was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// A change may have reached WeChat without its answer: the next attempt looks before it sends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsure: bool,
    /// Failed because every attempt failed (a redrive from the dead-letter queue tries it again).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exhausted: bool,
}

/// Quota days turn at 00:00 China Standard Time (UTC+8), when WeChat resets its daily quotas.
pub(crate) fn china_day(unix_ms: u64) -> u64 {
    (unix_ms / 1000 + 8 * 3600) / 86_400
}

impl TargetRecord {
    pub fn parse(stored: &str) -> Option<TargetRecord> {
        serde_json::from_str(stored).ok()
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether nothing more is to be done for the target at `now_ms`: done, failed for good, or out of quota today.
    pub fn settled(&self, now_ms: u64) -> bool {
        match self.state {
            State::Done => true,
            State::Failed => !self.exhausted,
            State::Quota => china_day(self.updated) == china_day(now_ms),
            State::Running | State::Retrying => false,
        }
    }

    /// Whether another attempt holds the lease at `now_ms`.
    pub fn leased(&self, now_ms: u64) -> bool {
        self.state == State::Running && self.lease_until.is_some_and(|until| until > now_ms)
    }

    /// What `report` shows of it.
    pub fn reported(&self, authorizer: &str) -> Value {
        serde_json::json!({
            "authorizerAppid": authorizer,
            "state": self.state.name(),
            "errCode": self.err_code,
            "errMsg": self.err_msg,
            "attempts": self.attempts,
            "updated": self.updated,
            "exhausted": self.exhausted,
        })
    }
}

/// A rollout, as `start` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RolloutRecord {
    /// The cloud-call event each target runs, without `authorizerAppid`.
    pub event: Value,
    /// A random id made by the first start: the chunks and the targets' records are under it, so a start that lost
    /// the race to record the rollout, or an id used again after its records expired, never mixes with this one.
    pub run: String,
    /// How many targets, kept in `chunks` chunks.
    pub targets: usize,
    pub chunks: usize,
    /// When it was first started, unix ms.
    pub created: u64,
}

/// Targets are kept this many to a chunk (an item stays far below DynamoDB's 400 KB).
pub(crate) const CHUNK: usize = 1000;

/// The keys of one rollout: its record under its id; its chunks and its targets' records under its run.
pub(crate) struct Keys {
    id: String,
    rollout: String,
}

impl Keys {
    pub fn new(platform: &str, rollout_id: &str) -> Keys {
        Keys { id: rollout_id.to_owned(), rollout: format!("wx:rollout:{platform}:{rollout_id}") }
    }

    /// The rollout's id, as its control events and messages name it.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn rollout(&self) -> &str {
        &self.rollout
    }

    pub fn chunk(&self, run: &str, index: usize) -> String {
        format!("{}:{run}:targets:{index:05}", self.rollout)
    }

    pub fn target(&self, run: &str, authorizer: &str) -> String {
        format!("{}:{run}:target:{authorizer}", self.rollout)
    }
}

/// A new random id (a run's, a claim's holder): 64 random bits in hex.
pub(crate) fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A rollout id: what the keys and the glob of a Redis scan can hold as they are.
pub(crate) fn is_rollout_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_as_written_and_settle_by_state_and_day() {
        let record = TargetRecord {
            state: State::Quota,
            err_code: 45009,
            err_msg: "reach max api daily quota limit".into(),
            attempts: 1,
            updated: 1_764_950_400_000, // 2025-12-05T16:00:00Z = 2025-12-06 00:00 in China
            lease_until: None,
            holder: None,
            unsure: false,
            exhausted: false,
        };
        assert_eq!(TargetRecord::parse(&record.encode()), Some(record.clone()));
        assert!(record.settled(record.updated + 3_600_000));
        assert!(!record.settled(record.updated + 86_400_000), "a quota is final for its day only");
        let exhausted = TargetRecord { state: State::Failed, exhausted: true, ..record.clone() };
        assert!(!exhausted.settled(0), "a redrive tries an exhausted target again");
        let failed = TargetRecord { state: State::Failed, ..record.clone() };
        assert!(failed.settled(0));
        let running = TargetRecord { state: State::Running, lease_until: Some(10), ..record };
        assert!(running.leased(9) && !running.leased(10));
        assert!(!running.encode().contains("unsure") && running.encode().contains("leaseUntil"));
    }

    #[test]
    fn rollout_ids_are_what_a_key_can_hold() {
        assert!(is_rollout_id("plugin-3.1.0_2026-12-05"));
        for bad in ["", "a:b", "a*", "a b", &"x".repeat(65)] {
            assert!(!is_rollout_id(bad), "{bad}");
        }
        let keys = Keys::new("wxcomponent", "r1");
        assert_eq!(keys.target("0a1b", "wxa"), "wx:rollout:wxcomponent:r1:0a1b:target:wxa");
        assert_eq!(keys.chunk("0a1b", 3), "wx:rollout:wxcomponent:r1:0a1b:targets:00003");
        assert!(is_rollout_id(&random_id()) && random_id() != random_id());
    }
}
