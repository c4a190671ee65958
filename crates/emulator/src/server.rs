//! The emulator's HTTP side: accepting connections, applying scripted faults and routing WeChat's paths to their
//! endpoints and `/__emulator/` to the control endpoint.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::json;
use tokio::sync::watch;

use super::api_security::{SecurityHeaders, Spoil};
use super::component_api;
use super::control::control;
use super::plugins::{plugin_call, PluginEndpoint, Received};
use super::state::{lock, Fault, Shared, State};
use super::token_api::{classic_token, stable_token};
use super::wire::{error_body, json_reply, not_found, plain, rid, Reply, WireReply};
use wechat_wire::codes;

const MAX_BODY: usize = 1 << 20;

/// The connection is dropped without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a fault")
    }
}

impl std::error::Error for Dropped {}

pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Shared, mut stop: watch::Receiver<bool>) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // Out of descriptors or a reset before accept: keep serving.
                Err(_) => { tokio::time::sleep(Duration::from_millis(5)).await; continue; }
            },
            _ = stop.changed() => return,
        };
        // Small answers must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(shared.clone(), peer, req));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = stop.changed() => {}
            }
        });
    }
}

async fn handle(shared: Shared, peer: SocketAddr, req: Request<Incoming>) -> Result<WireReply, Dropped> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let content_type = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let security = SecurityHeaders::from_request(req.headers());
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "text/html", "<html><body>413</body></html>")),
    };
    if path.starts_with("/__emulator/") {
        return Ok(if peer.ip().to_canonical().is_loopback() {
            control(&shared, &method, &path, &body)
        } else {
            not_found()
        });
    }

    let fault = lock(&shared).receive(method.as_str(), &path, &query, content_type, &body);
    let (delay, content_type, spoil, withhold) = match plan(fault) {
        Plan::Instead(reply) => return reply,
        Plan::Process { delay, content_type, spoil, withhold } => (delay, content_type, spoil, withhold),
    };

    // On a task of its own, so a client that hangs up during the delay does not cancel the change: WeChat too
    // finishes what it started.
    let processed = tokio::spawn(async move {
        // Even a zero sleep waits for the timer's next millisecond tick.
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let request = Received { method: &method, path: &path, query: &query, security: &security, body: &body };
        answer(&mut lock(&shared), &request, spoil)
    });
    let reply = processed.await.unwrap_or_default();
    if let Some(hold) = withhold {
        tokio::time::sleep(hold).await;
        return Err(Dropped);
    }
    Ok(match reply {
        Some(reply) => reply.into_wire(content_type),
        None => not_found(),
    })
}

/// What a scripted fault leaves of a request's normal course.
enum Plan {
    /// This, without processing the request.
    Instead(Result<WireReply, Dropped>),
    /// Process the request after `delay`, label the JSON answer `content_type`, spoil a secured answer, and withhold
    /// the answer this long, then drop the connection.
    Process { delay: Duration, content_type: &'static str, spoil: Option<Spoil>, withhold: Option<Duration> },
}

fn plan(fault: Option<Fault>) -> Plan {
    let mut content_type = "application/json; encoding=utf-8";
    let mut delay = Duration::ZERO;
    let mut spoil = None;
    let mut withhold = None;
    match fault {
        Some(Fault::Drop) => return Plan::Instead(Err(Dropped)),
        Some(Fault::Errcode { errcode, errmsg }) => {
            let text = errmsg.unwrap_or_else(|| codes::errmsg(errcode).to_owned());
            return Plan::Instead(Ok(json_reply(
                json!({ "errcode": errcode, "errmsg": format!("{text} rid: {}", rid()) }),
                content_type,
            )));
        }
        Some(Fault::Status { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let page = format!("<html><head><title>{status}</title></head><body>{status}</body></html>");
            return Plan::Instead(Ok(plain(status, "text/html", &page)));
        }
        Some(Fault::Redirect { status, location }) => {
            let mut reply = plain(StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND), "text/html", "");
            if let Ok(location) = location.parse() {
                reply.headers_mut().insert(http::header::LOCATION, location);
            }
            return Plan::Instead(Ok(reply));
        }
        Some(Fault::NonJson { body }) => {
            let body = body.unwrap_or_else(|| "<html><body>upstream busy</body></html>".to_owned());
            return Plan::Instead(Ok(plain(StatusCode::OK, "text/html", &body)));
        }
        Some(Fault::Delay { ms }) => delay = Duration::from_millis(ms),
        Some(Fault::TextPlain) => content_type = "text/plain",
        Some(Fault::TamperedEnvelope) => spoil = Some(Spoil::TamperedEnvelope),
        Some(Fault::UnknownCertificate) => spoil = Some(Spoil::UnknownCertificate),
        Some(Fault::ForeignAppid) => spoil = Some(Spoil::ForeignAppid),
        Some(Fault::StaleTimestamp) => spoil = Some(Spoil::StaleTimestamp),
        Some(Fault::TimeoutAfterApply { ms }) => withhold = Some(Duration::from_millis(ms)),
        None => {}
    }
    Plan::Process { delay, content_type, spoil, withhold }
}

/// WeChat's answer to a request, or `None` for a path WeChat does not serve. Only the plugin endpoints speak API
/// security (and so meet `spoil`).
fn answer(state: &mut State, request: &Received<'_>, spoil: Option<Spoil>) -> Option<Reply> {
    let now = state.clock.now();
    let Received { method, path, query, body, .. } = *request;
    if let Some(result) = component_api::answer(state, method, path, query, body, now) {
        return Some(Reply::Json(result.unwrap_or_else(|e| error_body(&e))));
    }
    if let Some(endpoint) = PluginEndpoint::at(path) {
        return Some(plugin_call(state, endpoint, request, spoil, now));
    }
    let result = match path {
        "/cgi-bin/token" => classic_token(state, method, query, now),
        "/cgi-bin/stable_token" => stable_token(state, method, body, now),
        _ => return None,
    };
    Some(Reply::Json(result.unwrap_or_else(|e| error_body(&e))))
}
