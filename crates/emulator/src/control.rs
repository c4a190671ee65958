//! The loopback-only control endpoint under `/__emulator/`: reading the state, the log, the counters and the changes
//! made; scripting faults and setting fault rates; moving the clock; invalidating tokens; resetting; and scripting
//! the open platform's events.

use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::desk::PLUGIN_FUNC_SET;
use super::invalid::Invalid;
use super::platform;
use super::rates::{FaultDraws, FaultRates};
use super::state::{lock, Fault, Shared, State};
use super::wire::{json_reply, json_status, not_found, WireReply};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptOrder {
    path: String,
    fault: Fault,
    #[serde(default = "one")]
    times: usize,
}

fn one() -> usize {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceOrder {
    seconds: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidateOrder {
    appid: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlatformOrder {
    component: String,
    #[serde(default)]
    authorizer: Option<String>,
    /// For `authorize`: the permission sets granted; plugin management (40) alone when absent.
    #[serde(default = "plugin_set")]
    func_ids: Vec<u32>,
}

fn plugin_set() -> Vec<u32> {
    vec![PLUGIN_FUNC_SET]
}

impl PlatformOrder {
    fn authorizer(&self) -> Result<&str, Invalid> {
        self.authorizer.as_deref().ok_or_else(|| Invalid::Request("bad control request: authorizer missing".to_owned()))
    }
}

/// `POST /__emulator/platform/{push_ticket,authorize,revoke}`: answers the push as WeChat sent it.
fn platform_control(state: &mut State, action: &str, order: PlatformOrder) -> Result<WireReply, Invalid> {
    let outgoing = match action {
        "push_ticket" => platform::issue_ticket(state, &order.component)?,
        "authorize" => platform::authorize(state, &order.component, order.authorizer()?, &order.func_ids)?,
        "revoke" => platform::revoke(state, &order.component, order.authorizer()?)?,
        _ => return Ok(not_found()),
    };
    Ok(json_reply(json!(outgoing.send()), "application/json"))
}

pub(crate) fn control(shared: &Shared, method: &Method, path: &str, body: &[u8]) -> WireReply {
    fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Invalid> {
        serde_json::from_slice(body).map_err(|e| Invalid::Request(format!("bad control request: {e}")))
    }
    let mut state = lock(shared);
    let reply = match (method, path.trim_start_matches("/__emulator")) {
        (&Method::GET, "/state") => Ok(json_reply(state.snapshot(), "application/json")),
        (&Method::GET, "/requests") => Ok(json_reply(json!(state.log), "application/json")),
        (&Method::GET, "/counters") => Ok(json_reply(json!(state.counters), "application/json")),
        (&Method::GET, "/changes") => Ok(json_reply(json!(state.usage.changes), "application/json")),
        (&Method::POST, "/fault_rates") => parse::<FaultRates>(body).and_then(|rates| {
            rates.validate()?;
            state.rates = Some(FaultDraws::new(rates));
            Ok(json_reply(json!(rates), "application/json"))
        }),
        (&Method::DELETE, "/fault_rates") => {
            state.rates = None;
            Ok(json_reply(json!({ "cleared": true }), "application/json"))
        }
        (&Method::POST, "/faults") => parse::<ScriptOrder>(body).map(|o| {
            state.script(&o.path, o.fault, o.times);
            json_reply(json!({ "scripted": o.times, "path": o.path }), "application/json")
        }),
        (&Method::DELETE, "/faults") => {
            state.faults.clear();
            Ok(json_reply(json!({ "cleared": true }), "application/json"))
        }
        (&Method::POST, "/clock") => parse::<AdvanceOrder>(body).and_then(|o| {
            state.clock.advance(o.seconds)?;
            Ok(json_reply(json!({ "now": state.clock.now() }), "application/json"))
        }),
        (&Method::POST, "/invalidate") => parse::<InvalidateOrder>(body).map(|o| {
            let now = state.clock.now();
            let n = state.tokens.invalidate(&o.appid, now);
            json_reply(json!({ "invalidated": n }), "application/json")
        }),
        (&Method::POST, "/reset") => {
            state.reset();
            Ok(json_reply(json!({ "reset": true }), "application/json"))
        }
        (&Method::POST, p) if p.starts_with("/platform/") => parse::<PlatformOrder>(body)
            .and_then(|o| platform_control(&mut state, p.trim_start_matches("/platform/"), o)),
        _ => Ok(not_found()),
    };
    reply.unwrap_or_else(|error| json_status(StatusCode::BAD_REQUEST, json!({ "error": error.to_string() })))
}
