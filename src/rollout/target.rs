//! One queue message: one target's change, made at most once whatever SQS redelivers.
//!
//! The target's record is its slot: an attempt takes it (a lease, by compare-and-set) before it calls WeChat, and
//! writes the outcome over its own claim. A target already settled is skipped; one whose lease another attempt holds
//! is left for later. An attempt that finds the previous one's outcome unknown (a change sent, then a timeout, a
//! dropped connection, or a process that died holding the lease) does not resend blind: an `apply` or `unbind`
//! first reads the plugin list, and a change found made is recorded done without a second call. An `update` is
//! resent: it names an absolute version, so a second update to the same version changes nothing, and WeChat's list
//! does not show versions to look at.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::record::{random_id, Keys, State, TargetRecord};
use super::{is_rollout_id, store_unavailable, Rollouts};
use crate::call::PluginCaller;
use crate::clock::now_ms;
use crate::error::{sdk_codes, Error, Failure};
use crate::observe::{Outcome, RolloutPart, Usage};
use crate::operation::{Operation, Request};
use crate::present::NO_METHOD;
use crate::wechat::client::time_left;
use crate::wechat::is_appid;
use wechat_wire::codes::{self, Class};

/// A record starts only with at least this much time left: an exchange, and the outcome's write.
const LEAST_TIME: Duration = Duration::from_millis(1500);
/// Kept back from the invocation's deadline for writing the outcome and answering.
const RESERVE: Duration = Duration::from_millis(1000);
/// A lease outlives its attempt's deadline by this much: the outcome's write.
const LEASE_GRACE: Duration = Duration::from_secs(2);

/// What became of one message: whether SQS should deliver it again, and its record line.
pub(crate) struct Handled {
    /// List it in `batchItemFailures`.
    pub retry: bool,
    /// Its line: the call's outcome, or why nothing was called.
    pub outcome: Outcome,
    /// The event's action, for the line.
    pub action: String,
}

/// A message read: the rollout (its id and run), the target, the event to run.
struct Message {
    rollout_id: String,
    run: String,
    authorizer: String,
    event: Value,
}

/// What a failure means for the target.
enum Verdict {
    /// Worth another attempt; `sent`: the change may have reached WeChat.
    Retry { sent: bool },
    /// WeChat's daily quota.
    Quota,
    /// Final.
    Final,
}

fn verdict(error: &Error) -> Verdict {
    match error {
        Error::WxApi { errcode, .. } if *errcode == codes::DAILY_QUOTA => Verdict::Quota,
        Error::WxApi { errcode, .. } => match codes::class(*errcode) {
            Class::Busy => Verdict::Retry { sent: true },
            // A minute or hourly quota: refused before anything was done, and gone soon.
            Class::Quota => Verdict::Retry { sent: false },
            _ => Verdict::Final,
        },
        Error::Upstream { failure, .. } => match failure {
            Failure::Network(_) | Failure::Timeout | Failure::InvalidJson(_) => Verdict::Retry { sent: true },
            Failure::Status(status) if *status >= 500 || *status == 429 => Verdict::Retry { sent: true },
            Failure::Status(_) | Failure::Unverified(_) => Verdict::Final,
        },
        Error::Token { errcode, .. } => match *errcode {
            sdk_codes::NETWORK | sdk_codes::TIMEOUT | sdk_codes::SYSTEM | sdk_codes::NO_TICKET => {
                Verdict::Retry { sent: false }
            }
            code if codes::class(code) == Class::Busy => Verdict::Retry { sent: false },
            _ => Verdict::Final,
        },
        Error::Store { .. } | Error::Rollout { .. } | Error::Config(_) => Verdict::Retry { sent: false },
        Error::InvalidEvent { .. } => Verdict::Final,
    }
}

impl Rollouts {
    /// Runs one message's target, within `deadline` (the invocation's); `receive_count` is SQS's
    /// `ApproximateReceiveCount`.
    pub(crate) async fn handle_message(
        &self,
        caller: &PluginCaller,
        body: &str,
        receive_count: u32,
        deadline: Instant,
    ) -> Handled {
        let started = Instant::now();
        let message = match read_message(body) {
            Ok(message) => message,
            Err((error, action)) => {
                // Nothing to record it under: said in its line, and not delivered again (it would fail the same way).
                tracing::warn!("a rollout message that is not one of ours; dropped");
                let result = Err(error);
                return Handled {
                    retry: false,
                    outcome: Outcome::of(&result, "invalid", Usage::default(), started),
                    action,
                };
            }
        };
        let action = message.event.get("action").and_then(Value::as_str).unwrap_or_default().to_owned();
        let mut attempt = Attempt { rollouts: self, caller, message: &message, usage: Usage::default() };
        let (retry, state, result, dimension) = attempt.run(receive_count, deadline).await;
        let mut outcome = Outcome::of(&result, dimension, attempt.usage, started);
        outcome.authorizer = Some(message.authorizer.clone());
        outcome.rollout = Some(RolloutPart { id: message.rollout_id.clone(), state });
        Handled { retry, outcome, action }
    }
}

/// The message's rollout, target and event; or, for a message that names no rollout or target, why.
fn read_message(body: &str) -> Result<Message, (Error, String)> {
    let invalid = |detail: &str| {
        let error = Error::InvalidEvent { method: NO_METHOD, detail: format!("rollout message: {detail}") };
        (error, String::new())
    };
    let value: Value = serde_json::from_str(body).map_err(|_| invalid("not JSON"))?;
    let rollout_id = value.get("rolloutId").and_then(Value::as_str).filter(|id| is_rollout_id(id));
    let run = value.get("run").and_then(Value::as_str).filter(|run| is_rollout_id(run));
    let event = value.get("event").filter(|e| e.is_object());
    let authorizer = event.and_then(|e| e.get("authorizerAppid")).and_then(Value::as_str).filter(|a| is_appid(a));
    match (rollout_id, run, event, authorizer) {
        (Some(rollout_id), Some(run), Some(event), Some(authorizer)) => Ok(Message {
            rollout_id: rollout_id.to_owned(),
            run: run.to_owned(),
            authorizer: authorizer.to_owned(),
            event: event.clone(),
        }),
        _ => Err(invalid("no rolloutId, run, event or event.authorizerAppid")),
    }
}

/// One attempt at one target.
struct Attempt<'a> {
    rollouts: &'a Rollouts,
    caller: &'a PluginCaller,
    message: &'a Message,
    usage: Usage,
}

/// How an attempt ended: retry or not, the target's state, the call's result, the metric dimension.
type Ran = (bool, &'static str, Result<Value, Error>, &'static str);

impl Attempt<'_> {
    async fn run(&mut self, receive_count: u32, deadline: Instant) -> Ran {
        let rollouts = self.rollouts;
        let keys = Keys::new(&rollouts.platform, &self.message.rollout_id);
        let key = keys.target(&self.message.run, &self.message.authorizer);
        let request = Request::from_event(&self.message.event);
        let dimension = request.as_ref().map_or("invalid", |r| r.operation.name());
        let last = receive_count >= rollouts.settings.max_receives;
        let unavailable =
            |detail: String| Err(Error::Rollout { method: NO_METHOD, errcode: sdk_codes::STORE_UNAVAILABLE, detail });
        // Time for an exchange and the outcome's write, or leave it for another invocation.
        let attempt_deadline = deadline.checked_sub(RESERVE).unwrap_or(deadline);
        if time_left(attempt_deadline).is_none_or(|left| left < LEAST_TIME) {
            return (true, "pending", unavailable("no time left in this invocation".into()), dimension);
        }

        let current = match rollouts.read(&key, deadline).await {
            Ok(current) => current,
            Err(failure) => return (true, "pending", Err(store_unavailable(NO_METHOD, failure)), dimension),
        };
        let previous = current.as_deref().map(|raw| TargetRecord::parse(raw).unwrap_or_else(|| unreadable(raw)));
        let now = now_ms();
        if let Some(previous) = &previous {
            if previous.settled(now) {
                let result = Ok(serde_json::json!({ "skipped": previous.state.name() }));
                return (false, previous.state.name(), result, dimension);
            }
            if previous.leased(now) {
                // Another attempt is at it, or was when its process died: come back when its lease has ended (the
                // queue's visibility timeout, six times the function's, outlasts any lease).
                return (true, "running", unavailable("another attempt holds the target".into()), dimension);
            }
        }
        let unsure = previous.as_ref().is_some_and(|p| p.unsure || p.state == State::Running);
        let attempts = previous.as_ref().map_or(0, |p| p.attempts) + 1;
        let lease_until =
            now + time_left(attempt_deadline).unwrap_or_default().as_millis() as u64 + LEASE_GRACE.as_millis() as u64;
        let claim = TargetRecord {
            state: State::Running,
            err_code: previous.as_ref().map_or(0, |p| p.err_code),
            err_msg: previous.as_ref().map(|p| p.err_msg.clone()).unwrap_or_default(),
            attempts,
            updated: now,
            lease_until: Some(lease_until),
            holder: Some(random_id()),
            unsure,
            exhausted: false,
        };
        let claim_raw = claim.encode();
        match rollouts.write(&key, current.as_deref(), &claim_raw, deadline).await {
            Ok(true) => {}
            // Lost, or ours after all: a write whose answer was lost and that the store's client sent again finds
            // its own claim there (the claim's holder is random, so no other attempt writes the same).
            Ok(false) => match rollouts.read(&key, deadline).await {
                Ok(Some(now_stored)) if now_stored == claim_raw => {}
                _ => return (true, "running", unavailable("another attempt took the target first".into()), dimension),
            },
            Err(failure) => return (true, "pending", Err(store_unavailable(NO_METHOD, failure)), dimension),
        }

        let (result, found_made) = match request {
            Err(error) => (Err(error), false),
            Ok(request) => self.change(&request, unsure, attempt_deadline).await,
        };
        let (state, retry, unsure_now, exhausted) = match &result {
            Ok(_) => (State::Done, false, false, false),
            Err(error) => match verdict(error) {
                Verdict::Final => (State::Failed, false, false, false),
                Verdict::Quota => (State::Quota, false, unsure, false),
                Verdict::Retry { .. } if last => (State::Failed, true, true, true),
                Verdict::Retry { sent } => (State::Retrying, true, unsure || sent, false),
            },
        };
        let (err_code, err_msg) = match &result {
            Ok(_) if found_made => (0, "found in place after an unknown outcome; not sent again".to_owned()),
            Ok(_) => (0, String::new()),
            Err(error) => (error.err_code(), error.err_msg()),
        };
        let outcome = TargetRecord {
            state,
            err_code,
            err_msg,
            attempts,
            updated: now_ms(),
            lease_until: None,
            holder: None,
            unsure: unsure_now,
            exhausted,
        };
        match rollouts.write(&key, Some(&claim_raw), &outcome.encode(), deadline).await {
            // Our claim is gone only if our lease ran out and another attempt took the target: its record stands.
            Ok(_) => (retry, state.name(), result, dimension),
            // Unrecorded: delivered again, the next attempt finds our claim and looks before it sends.
            Err(failure) => {
                tracing::warn!(error = %failure, "the outcome could not be recorded; the message comes back");
                (true, "running", result, dimension)
            }
        }
    }

    /// The change, or, after an unknown outcome, the look that finds it made (then `true`).
    async fn change(&mut self, request: &Request, unsure: bool, deadline: Instant) -> (Result<Value, Error>, bool) {
        if unsure {
            if let Some(expected) = Expected::of(&request.operation) {
                let list = Request { operation: Operation::List, authorizer_appid: request.authorizer_appid.clone() };
                match self.caller.execute(&list, deadline, &mut self.usage).await {
                    Ok(answer) if expected.holds(&answer) => return (Ok(answer), true),
                    Ok(_) => {}
                    Err(error) => return (Err(error), false),
                }
            }
        }
        (self.caller.execute(request, deadline, &mut self.usage).await, false)
    }
}

/// What the plugin list shows once a change is made.
enum Expected<'a> {
    /// `apply`: the plugin listed, applying or approved.
    Listed(&'a str),
    /// `unbind`: the plugin not listed.
    Absent(&'a str),
}

/// The plugin list's statuses that an apply leaves: 1 applying, 2 approved.
const APPLIED: [i64; 2] = [1, 2];

impl<'a> Expected<'a> {
    fn of(operation: &'a Operation) -> Option<Expected<'a>> {
        match operation {
            Operation::Apply(apply) => Some(Expected::Listed(&apply.plugin_appid)),
            Operation::Unbind(unbind) => Some(Expected::Absent(&unbind.plugin_appid)),
            _ => None,
        }
    }

    fn holds(&self, list: &Value) -> bool {
        let listed = |plugin: &str| {
            list.get("pluginList").and_then(Value::as_array).into_iter().flatten().find(|p| p["appid"] == plugin)
        };
        match self {
            Expected::Listed(plugin) => {
                listed(plugin).and_then(|p| p["status"].as_i64()).is_some_and(|status| APPLIED.contains(&status))
            }
            Expected::Absent(plugin) => listed(plugin).is_none(),
        }
    }
}

/// A stored record we cannot read: treated as an attempt whose outcome is unknown, so nothing is sent blind.
fn unreadable(raw: &str) -> TargetRecord {
    tracing::warn!(bytes = raw.len(), "a target record that does not read; treated as an unknown outcome");
    TargetRecord {
        state: State::Retrying,
        err_code: 0,
        err_msg: String::new(),
        attempts: 0,
        updated: 0,
        lease_until: None,
        holder: None,
        unsure: true,
        exhausted: false,
    }
}
