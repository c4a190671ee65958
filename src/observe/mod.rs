//! What the function tells its operators: one line per invocation (`Outcome` → `logging::Record`), holding the
//! log fields and the CloudWatch EMF metrics (`metrics`); everything else goes through `tracing`.
//!
//! Knows nothing of the app: the edge and the call path describe what happened as an `Outcome`, and this writes it.

pub mod logging;
mod metrics;

use std::time::Instant;

use serde_json::Value;
use tracing::Level;

use crate::error::Error;
pub use metrics::Usage;

/// Which invocation a record is about: Lambda's request id, and the X-Ray trace it belongs to when Lambda sent one.
/// A bare `&str` is a request id without a trace (local runs, tests).
#[derive(Debug, Clone, Copy)]
pub struct RequestIds<'a> {
    /// `Lambda-Runtime-Aws-Request-Id` (or the caller's own id).
    pub request_id: &'a str,
    /// The `Root` of `Lambda-Runtime-Trace-Id` (`1-5759e988-bd862e3fe1be46a994272793`): what the X-Ray console
    /// finds a trace by.
    pub xray_trace_id: Option<&'a str>,
}

impl<'a> From<&'a str> for RequestIds<'a> {
    fn from(request_id: &'a str) -> RequestIds<'a> {
        RequestIds { request_id, xray_trace_id: None }
    }
}

/// A rollout's part in a record: its id (a property of the metrics, not a dimension) and the target's state.
#[derive(Debug, Clone)]
pub(crate) struct RolloutPart {
    /// The rollout's id.
    pub id: String,
    /// The state the record left its target in (`done`, `retrying`, …).
    pub state: &'static str,
}

/// What an invocation did, as its record tells it.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The metric dimension: the operation's name, `invalid`, `refused` or `push_*`.
    pub dimension: &'static str,
    /// The record's level: `INFO` for an answer, `WARN` for a failure or a refusal.
    pub level: Level,
    /// The errCode answered: 0 for a success.
    pub err_code: i64,
    /// The failure's `errorType` ([`Error::kind`]); `None` for a success and for what never became a call.
    pub error_type: Option<&'static str>,
    /// The failure's errMsg, or why the edge refused; `None` for a success.
    pub err_msg: Option<String>,
    /// The mini program an authorisation push (or a rollout's record) was about.
    pub authorizer: Option<String>,
    /// The rollout a queue record belongs to, and the state it left its target in.
    pub rollout: Option<RolloutPart>,
    /// The tokens and WeChat calls it took.
    pub usage: Usage,
    /// Milliseconds from the invocation's start to its answer.
    pub latency_ms: f64,
}

impl Outcome {
    /// A call's outcome: its result, what it used, how long it took since `started`.
    pub fn of(result: &Result<Value, Error>, dimension: &'static str, usage: Usage, started: Instant) -> Outcome {
        let error = result.as_ref().err();
        Outcome {
            dimension,
            level: if error.is_some() { Level::WARN } else { Level::INFO },
            err_code: error.map_or(0, Error::err_code),
            error_type: error.map(Error::kind),
            err_msg: error.map(ToString::to_string),
            authorizer: None,
            rollout: None,
            usage,
            latency_ms: elapsed_ms(started),
        }
    }

    /// An answer that made no call to WeChat (a refusal at the edge, a push): its code and, for a failure, why.
    pub fn answered(
        dimension: &'static str,
        level: Level,
        err_code: i64,
        err_msg: Option<String>,
        started: Instant,
    ) -> Outcome {
        let (usage, latency_ms) = (Usage::default(), elapsed_ms(started));
        Outcome {
            dimension,
            level,
            err_code,
            error_type: None,
            err_msg,
            authorizer: None,
            rollout: None,
            usage,
            latency_ms,
        }
    }

    /// Writes the invocation's one line: `action` is the event's own (whatever it holds, escaped), `http` the
    /// gateway's part when it came through one; `metrics` whether the EMF members go in.
    pub fn write(&self, ids: RequestIds<'_>, action: &str, http: Option<logging::Http>, metrics: bool) {
        let sample = metrics::Sample {
            dimension: self.dimension,
            err_code: self.err_code,
            latency_ms: self.latency_ms,
            usage: self.usage,
            request_id: ids.request_id,
            rollout_id: self.rollout.as_ref().map(|r| r.id.as_str()),
        };
        logging::Record {
            sample,
            level: self.level,
            action,
            error_type: self.error_type,
            err_msg: self.err_msg.as_deref(),
            authorizer: self.authorizer.as_deref(),
            rollout: self.rollout.as_ref(),
            xray_trace_id: ids.xray_trace_id,
            http,
        }
        .emit(metrics);
    }
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}
