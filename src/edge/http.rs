//! An HTTP request through a gateway: a plugin call once admitted, or (as a third-party platform) one of WeChat's
//! pushes to the authorisation-event URL. Either way answered in the gateway's shape, with the invocation's record.

use std::time::Instant;

use serde_json::Value;
use tracing::Level;

use super::action_of;
use super::gateway::{self, Gateway, HttpRequest, PushRequest, Reply};
use crate::app::App;
use crate::observe::logging::Http;
use crate::observe::{Outcome, RequestIds};
use crate::platform::push::Signed;
use crate::platform::{Handled, Platform, PushFailure};

/// Serves a gateway's request; the answer is the gateway's response (the invocation itself succeeds).
pub(super) async fn serve(
    app: &App,
    gateway: Gateway,
    request: Result<HttpRequest, Reply>,
    deadline: Instant,
    ids: RequestIds<'_>,
) -> Value {
    let started = Instant::now();
    let http = |status, authorised_by| Some(Http { gateway: gateway.name(), authorised_by, status });
    if let (Some(platform), Ok(request)) = (app.caller.tokens.platform(), &request) {
        if let Some(push) = request.push() {
            let (reply, outcome) = receive_push(app, platform, push, deadline, started).await;
            outcome.write(ids, outcome.dimension, http(reply.status, Some("signature")), app.metrics);
            return gateway::respond(gateway, reply, Some(request));
        }
    }
    let admitted = request.as_ref().map_err(Clone::clone).and_then(|r| r.admit(app.gateway_key.as_ref()));
    let reply = match admitted {
        Ok(event) => {
            let (result, outcome) = app.caller.call(&event, deadline, started).await;
            let reply = match result {
                Ok(result) => Reply::ok(result),
                Err(e) => Reply::from_error(&e),
            };
            let authorised_by = request.as_ref().ok().map(HttpRequest::authorised_by);
            outcome.write(ids, action_of(&event), http(reply.status, authorised_by), app.metrics);
            reply
        }
        Err(refusal) => {
            // Refused at the edge, WeChat never called: still its record.
            let outcome = answered("refused", Level::WARN, &refusal, None, started);
            outcome.write(ids, "refused", http(refusal.status, None), app.metrics);
            refusal
        }
    };
    gateway::respond(gateway, reply, request.as_ref().ok())
}

/// A push to the platform's authorisation-event URL: `success` once it is verified and kept.
async fn receive_push(
    app: &App,
    platform: &Platform,
    push: Result<PushRequest<'_>, Reply>,
    deadline: Instant,
    started: Instant,
) -> (Reply, Outcome) {
    let push = match push {
        Ok(push) => push,
        Err(refusal) => {
            let outcome = answered("push_refused", Level::WARN, &refusal, None, started);
            return (refusal, outcome);
        }
    };
    let signed = Signed { msg_signature: push.msg_signature, timestamp: push.timestamp, nonce: push.nonce };
    match platform.receive(&app.caller.client, &signed, &push.body, deadline).await {
        Ok(handled) => {
            let (dimension, err_code, authorizer) = match handled {
                Handled::Ticket { .. } => ("push_ticket", 0, None),
                Handled::Authorized(a) => ("push_authorized", 0, Some(a.authorizer_appid)),
                Handled::Unexchanged { err_code, authorizer_appid } => {
                    ("push_authorized", err_code, Some(authorizer_appid))
                }
                Handled::Unauthorized { authorizer_appid } => ("push_unauthorized", 0, Some(authorizer_appid)),
                Handled::Other { .. } => ("push_other", 0, None),
            };
            let reply = Reply::success();
            let mut outcome = answered(dimension, Level::INFO, &reply, None, started);
            (outcome.err_code, outcome.authorizer) = (err_code, authorizer);
            (reply, outcome)
        }
        Err(failure) => {
            let reply = Reply::failed(failure.status(), failure.code(), &failure.to_string());
            let dimension = match failure {
                PushFailure::Unstored(_) => "push_unstored",
                _ => "push_refused",
            };
            let outcome = answered(dimension, Level::WARN, &reply, Some(failure.to_string()), started);
            (reply, outcome)
        }
    }
}

/// The outcome of a request answered here, without a call to WeChat: the reply's own errCode.
fn answered(
    dimension: &'static str,
    level: Level,
    reply: &Reply,
    err_msg: Option<String>,
    started: Instant,
) -> Outcome {
    let err_code = reply.body["errCode"].as_i64().unwrap_or_default();
    Outcome::answered(dimension, level, err_code, err_msg, started)
}
