//! The emulator's HTTP side: routing WeChat's paths, scripted faults, the request log and the loopback-only control
//! endpoint.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use super::platform::{self, Platform};
use super::tokens::Tokens;
use super::world::{Caller, Endpoint, World, WxError};
use crate::wechat::codes;

/// What a scripted answer does instead of (or on top of) the normal one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answer `{"errcode":N,"errmsg":…}` (HTTP 200) without processing the request.
    Errcode {
        errcode: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        errmsg: Option<String>,
    },
    /// Answer this HTTP status with an HTML body, without processing the request.
    Status { status: u16 },
    /// Answer this redirect status (301, 302, 307, 308) with a `Location`, without processing the request.
    Redirect { status: u16, location: String },
    /// Wait, then process and answer normally (a client that gave up may still have changed state).
    Delay { ms: u64 },
    /// Close the connection without an answer and without processing the request.
    Drop,
    /// Answer HTTP 200 with a body that is not JSON, without processing the request.
    NonJson {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// Process normally, but label the JSON answer `text/plain`, as WeChat sometimes does.
    TextPlain,
}

/// One request as the emulator received it.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub body: String,
    /// The scripted fault that answered it, if any.
    pub fault: Option<Fault>,
    /// Virtual unix seconds.
    pub at: i64,
}

impl LoggedRequest {
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    pub fn json_body(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A clock that runs with real time from a chosen start and that tests can move forward.
#[derive(Debug)]
pub(crate) struct Clock {
    start_unix: i64,
    started: Instant,
    advanced: i64,
}

impl Clock {
    pub(crate) fn new(start_unix: Option<i64>) -> Clock {
        let real = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        Clock { start_unix: start_unix.unwrap_or(real), started: Instant::now(), advanced: 0 }
    }

    pub(crate) fn now(&self) -> i64 {
        self.start_unix + self.started.elapsed().as_secs() as i64 + self.advanced
    }

    /// Time only moves forward: a negative move is refused.
    pub(crate) fn advance(&mut self, secs: i64) -> Result<(), String> {
        if secs < 0 {
            return Err(format!("the clock only moves forward, not by {secs} s"));
        }
        self.advanced += secs;
        Ok(())
    }
}

const LOG_CAPACITY: usize = 100_000;
const MAX_BODY: usize = 1 << 20;

pub(crate) struct State {
    pub world: World,
    pub initial: World,
    pub tokens: Tokens,
    pub clock: Clock,
    pub faults: HashMap<String, VecDeque<Fault>>,
    pub log: VecDeque<LoggedRequest>,
    pub counters: BTreeMap<String, u64>,
    pub platform: Platform,
}

impl State {
    pub(crate) fn new(world: World) -> State {
        State {
            clock: Clock::new(world.now),
            initial: world.clone(),
            world,
            tokens: Tokens::default(),
            faults: HashMap::new(),
            log: VecDeque::new(),
            counters: BTreeMap::new(),
            platform: Platform::default(),
        }
    }

    pub(crate) fn reset(&mut self) {
        *self = State::new(self.initial.clone());
    }

    pub(crate) fn script(&mut self, path: &str, fault: Fault, times: usize) {
        self.faults.entry(path.to_owned()).or_default().extend(std::iter::repeat_n(fault, times));
    }

    fn next_fault(&mut self, path: &str) -> Option<Fault> {
        for key in [path, "*"] {
            if let Some(f) = self.faults.get_mut(key).and_then(VecDeque::pop_front) {
                return Some(f);
            }
        }
        None
    }

    /// A dump for people and for the control endpoint.
    pub(crate) fn snapshot(&mut self) -> Value {
        let now = self.clock.now();
        self.world.expire_pending(now);
        json!({
            "now": now,
            "world": self.world,
            "tokens_issued": self.tokens.issued().len(),
            "counters": self.counters,
            "platform": platform::snapshot(self),
        })
    }
}

pub(crate) type Shared = Arc<Mutex<State>>;

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the state half-written in a way that matters to a test double.
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The connection is dropped without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by a scripted fault")
    }
}

impl std::error::Error for Dropped {}

type Reply = Response<Full<Bytes>>;

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

async fn handle(shared: Shared, peer: SocketAddr, req: Request<Incoming>) -> Result<Reply, Dropped> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let content_type = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
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

    let fault = {
        let mut state = lock(&shared);
        let fault = state.next_fault(&path);
        *state.counters.entry(path.clone()).or_default() += 1;
        let entry = LoggedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            content_type,
            body: String::from_utf8_lossy(&body).into_owned(),
            fault: fault.clone(),
            at: state.clock.now(),
        };
        if state.log.len() == LOG_CAPACITY {
            state.log.pop_front();
        }
        state.log.push_back(entry);
        fault
    };

    let mut content_type = "application/json; encoding=utf-8";
    let mut delay = Duration::ZERO;
    match fault {
        Some(Fault::Drop) => return Err(Dropped),
        Some(Fault::Errcode { errcode, errmsg }) => {
            let text = errmsg.unwrap_or_else(|| codes::errmsg(errcode).to_owned());
            return Ok(json_reply(
                json!({ "errcode": errcode, "errmsg": format!("{text} rid: {}", rid()) }),
                content_type,
            ));
        }
        Some(Fault::Status { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let page = format!("<html><head><title>{status}</title></head><body>{status}</body></html>");
            return Ok(plain(status, "text/html", &page));
        }
        Some(Fault::Redirect { status, location }) => {
            let mut reply = plain(StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND), "text/html", "");
            if let Ok(location) = location.parse() {
                reply.headers_mut().insert(http::header::LOCATION, location);
            }
            return Ok(reply);
        }
        Some(Fault::NonJson { body }) => {
            let body = body.unwrap_or_else(|| "<html><body>upstream busy</body></html>".to_owned());
            return Ok(plain(StatusCode::OK, "text/html", &body));
        }
        Some(Fault::Delay { ms }) => delay = Duration::from_millis(ms),
        Some(Fault::TextPlain) => content_type = "text/plain",
        None => {}
    }

    // On a task of its own, so a client that hangs up during the delay does not cancel the change: WeChat too
    // finishes what it started.
    let processed = tokio::spawn(async move {
        // Even a zero sleep waits for the timer's next millisecond tick.
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        answer(&mut lock(&shared), &method, &path, &query, &body)
    });
    Ok(match processed.await.unwrap_or_default() {
        Some(value) => json_reply(value, content_type),
        None => not_found(),
    })
}

/// WeChat's answer to a request, or `None` for a path WeChat does not serve.
fn answer(state: &mut State, method: &Method, path: &str, query: &str, body: &[u8]) -> Option<Value> {
    let now = state.clock.now();
    if let Some(result) = platform::answer(state, method, path, query, body, now) {
        return Some(result.unwrap_or_else(|e| error_body(&e)));
    }
    let result = match path {
        "/cgi-bin/token" => classic_token(state, method, query, now),
        "/cgi-bin/stable_token" => stable_token(state, method, body, now),
        "/wxa/plugin" => plugin_call(state, Endpoint::Plugin, method, query, body, now),
        "/wxa/devplugin" => plugin_call(state, Endpoint::DevPlugin, method, query, body, now),
        _ => return None,
    };
    Some(match result {
        Ok(value) => value,
        Err(e) => error_body(&e),
    })
}

fn error_body(e: &WxError) -> Value {
    let text = codes::errmsg(e.code);
    let errmsg = match &e.hint {
        Some(hint) => format!("{text} hint: [{hint}] rid: {}", rid()),
        None => format!("{text} rid: {}", rid()),
    };
    json!({ "errcode": e.code, "errmsg": errmsg })
}

fn classic_token(state: &mut State, method: &Method, query: &str, now: i64) -> Result<Value, WxError> {
    if method != Method::GET {
        return Err(WxError::new(codes::REQUIRE_GET));
    }
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let get = |k: &str| params.get(k).map(String::as_str);
    let appid = authenticate(&state.world, get("grant_type"), get("appid"), get("secret"))?;
    let issued = state.tokens.classic(&appid, now, &state.world.settings)?;
    Ok(json!({ "access_token": issued.access_token, "expires_in": issued.expires_in }))
}

fn stable_token(state: &mut State, method: &Method, body: &[u8], now: i64) -> Result<Value, WxError> {
    if method != Method::POST {
        return Err(WxError::new(codes::REQUIRE_POST));
    }
    let body = json_object(body)?;
    let get = |k: &str| body.get(k).and_then(Value::as_str);
    let appid = authenticate(&state.world, get("grant_type"), get("appid"), get("secret"))?;
    let force_refresh = match body.get("force_refresh") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(WxError::hinted(codes::DATA_FORMAT_ERROR, "force_refresh must be a boolean")),
    };
    let issued = state.tokens.stable(&appid, force_refresh, now, &state.world.settings)?;
    Ok(json!({ "access_token": issued.access_token, "expires_in": issued.expires_in }))
}

/// Checks a token request's credentials; gives the appid they belong to.
fn authenticate(
    world: &World,
    grant_type: Option<&str>,
    appid: Option<&str>,
    secret: Option<&str>,
) -> Result<String, WxError> {
    if grant_type != Some("client_credential") {
        return Err(WxError::new(codes::INVALID_GRANT_TYPE));
    }
    let appid = appid.filter(|s| !s.is_empty()).ok_or(WxError::new(codes::APPID_MISSING))?;
    let secret = secret.filter(|s| !s.is_empty()).ok_or(WxError::new(codes::APPSECRET_MISSING))?;
    if world.component(appid).is_some() {
        return Err(WxError::new(codes::MUST_USE_COMPONENT_TOKEN));
    }
    let account = world.account(appid).ok_or(WxError::new(codes::INVALID_APPID))?;
    if account.secret != secret {
        return Err(WxError::new(codes::INVALID_APPSECRET));
    }
    if account.secret_frozen {
        return Err(WxError::new(codes::SECRET_FROZEN));
    }
    if account.ip_whitelist_blocks {
        return Err(WxError::hinted(codes::IP_NOT_WHITELISTED, "ipv4 127.0.0.1"));
    }
    Ok(account.appid.clone())
}

fn plugin_call(
    state: &mut State,
    endpoint: Endpoint,
    method: &Method,
    query: &str,
    body: &[u8],
    now: i64,
) -> Result<Value, WxError> {
    if method != Method::POST {
        return Err(WxError::new(codes::REQUIRE_POST));
    }
    let token = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "access_token").map(|(_, v)| v);
    let (appid, caller): (String, Caller) = state.tokens.check(token.as_deref(), now)?;
    if caller == Caller::Authorizer {
        // Both plugin endpoints belong to the platform's permission set 40.
        platform::check_plugin_call(state, token.as_deref().unwrap_or_default())?;
    }
    let body = json_object(body)?;
    let mut out = state.world.call(endpoint, &appid, caller, &body, now)?;
    let mut answer = Map::new();
    answer.insert("errcode".into(), json!(0));
    answer.insert("errmsg".into(), json!("ok"));
    answer.append(&mut out);
    Ok(Value::Object(answer))
}

pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, WxError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(WxError::new(codes::EMPTY_POST_DATA));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(WxError::new(codes::DATA_FORMAT_ERROR)),
    }
}

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
    vec![platform::PLUGIN_FUNC_SET]
}

impl PlatformOrder {
    fn authorizer(&self) -> Result<&str, String> {
        self.authorizer.as_deref().ok_or_else(|| "bad control request: authorizer missing".to_owned())
    }
}

/// `POST /__emulator/platform/{push_ticket,authorize,revoke}`: answers the push as WeChat sent it.
fn platform_control(state: &mut State, action: &str, order: PlatformOrder) -> Result<Reply, String> {
    let outgoing = match action {
        "push_ticket" => platform::issue_ticket(state, &order.component)?,
        "authorize" => platform::authorize(state, &order.component, order.authorizer()?, &order.func_ids)?,
        "revoke" => platform::revoke(state, &order.component, order.authorizer()?)?,
        _ => return Ok(not_found()),
    };
    Ok(json_reply(json!(outgoing.send()), "application/json"))
}

fn control(shared: &Shared, method: &Method, path: &str, body: &[u8]) -> Reply {
    fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
        serde_json::from_slice(body).map_err(|e| format!("bad control request: {e}"))
    }
    let mut state = lock(shared);
    let reply = match (method, path.trim_start_matches("/__emulator")) {
        (&Method::GET, "/state") => Ok(json_reply(state.snapshot(), "application/json")),
        (&Method::GET, "/requests") => Ok(json_reply(json!(state.log), "application/json")),
        (&Method::GET, "/counters") => Ok(json_reply(json!(state.counters), "application/json")),
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
    reply.unwrap_or_else(|error| json_status(StatusCode::BAD_REQUEST, json!({ "error": error })))
}

fn rid() -> String {
    format!("{:08x}-{:08x}-{:08x}", rand::random::<u32>(), rand::random::<u32>(), rand::random::<u32>())
}

fn json_reply(value: Value, content_type: &str) -> Reply {
    let mut reply = json_status(StatusCode::OK, value);
    reply.headers_mut().insert(http::header::CONTENT_TYPE, content_type.parse().expect("static content type"));
    reply
}

fn json_status(status: StatusCode, value: Value) -> Reply {
    plain(status, "application/json", &value.to_string())
}

fn plain(status: StatusCode, content_type: &str, body: &str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *reply.status_mut() = status;
    reply.headers_mut().insert(http::header::CONTENT_TYPE, content_type.parse().expect("static content type"));
    reply
}

fn not_found() -> Reply {
    plain(
        StatusCode::NOT_FOUND,
        "text/html",
        "<html><head><title>404 Not Found</title></head><body>404 Not Found</body></html>",
    )
}
