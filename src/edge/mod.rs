//! The ways in, and their answers: Lambda's Runtime API ([`lambda`]), a direct invocation's event, the HTTP
//! gateways ([`gateway`] reads and writes their shapes; `http` serves their requests and WeChat's pushes), and the
//! rollout queue's batches (`sqs`).
//!
//! The edge parses and answers; the call path (`crate::call`) and the platform decide. Each way in is a function
//! over the container's [`App`].

pub mod gateway;
mod http;
pub mod lambda;
mod sqs;

use std::time::Instant;

use serde_json::Value;

use crate::app::App;
use crate::error::Error;
use crate::observe::{Outcome, RequestIds, Usage};
use crate::present;
use crate::rollout::Control;

/// One invocation's payload as the Runtime API delivers it: JSON, or refused as [`Error::InvalidEvent`] with its
/// record like any other invalid event (Lambda's Invoke API takes only JSON; local runtimes pass anything).
pub async fn handle_payload<'a>(
    app: &App,
    payload: &[u8],
    deadline: Instant,
    ids: impl Into<RequestIds<'a>>,
) -> Result<Value, Error> {
    let (started, ids) = (Instant::now(), ids.into());
    match serde_json::from_slice(payload) {
        Ok(event) => handle(app, event, deadline, ids).await,
        Err(e) => {
            let error =
                Error::InvalidEvent { method: present::NO_METHOD, detail: format!("the event is not JSON ({e})") };
            let result = Err(error);
            Outcome::of(&result, "invalid", Usage::default(), started).write(ids, "", None, app.metrics);
            result
        }
    }
}

/// One invocation as Lambda delivers it: a direct call, or a gateway's HTTP request (answered in the gateway's
/// shape, so the invocation itself succeeds). Either way it writes one record.
pub async fn handle<'a>(
    app: &App,
    event: Value,
    deadline: Instant,
    ids: impl Into<RequestIds<'a>>,
) -> Result<Value, Error> {
    let ids = ids.into();
    if sqs::is_queue_batch(&event) {
        return sqs::consume(app, event, deadline, ids).await;
    }
    match gateway::recognise(event) {
        gateway::Inbound::Direct(event) => invoke(app, &event, deadline, ids).await,
        gateway::Inbound::Http(gateway, request) => Ok(http::serve(app, gateway, request, deadline, ids).await),
    }
}

/// One direct call, with its record: the event in, the result or the error out. An event with a `rollout` field
/// starts, counts or reports a rollout.
pub async fn invoke<'a>(
    app: &App,
    event: &Value,
    deadline: Instant,
    ids: impl Into<RequestIds<'a>>,
) -> Result<Value, Error> {
    if let Some(control) = event.get("rollout") {
        return rollout_control(app, event, control, deadline, ids.into()).await;
    }
    let (result, outcome) = app.caller.call(event, deadline, Instant::now()).await;
    outcome.write(ids.into(), action_of(event), None, app.metrics);
    result
}

/// The event's own `action`, even one we do not know (the record escapes whatever it holds).
fn action_of(event: &Value) -> &str {
    event.get("action").and_then(Value::as_str).unwrap_or_default()
}

/// A rollout's control event, with its record.
async fn rollout_control(
    app: &App,
    event: &Value,
    control: &Value,
    deadline: Instant,
    ids: RequestIds<'_>,
) -> Result<Value, Error> {
    let started = Instant::now();
    let result = match &app.rollouts {
        Some(rollouts) => rollouts.control(&app.caller, event, deadline).await,
        None => Err(Error::Config(no_rollouts(app).into())),
    };
    let dimension = Control::from_event(event).map_or("invalid", Control::dimension);
    Outcome::of(&result, dimension, Usage::default(), started).write(
        ids,
        control.as_str().unwrap_or_default(),
        None,
        app.metrics,
    );
    result
}

/// Why this function runs no rollouts.
pub(crate) fn no_rollouts(app: &App) -> &'static str {
    match app.caller.tokens.platform() {
        Some(_) => "rollouts need the platform's shared store (WX_TOKEN_CACHE a redis:// URL or dynamodb://<table>)",
        None => "rollouts are for a third-party platform (WX_COMPONENT_APPID)",
    }
}
