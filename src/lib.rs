//! WeChat mini-program plugin management (`cloud.openapi.pluginManager.*`) as an AWS Lambda function.
//!
//! One request flows one way: the event ([`operation`]) → a token ([`token`]) → WeChat ([`wechat`]) → the result, or
//! one [`Error`]. The Lambda binary and `wxpm invoke` both call [`App::handle`]. As a third-party platform
//! ([`platform`]) the token is the event's mini program's authorizer token, and the gateway also takes WeChat's pushes.

pub mod case;
pub mod config;
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod error;
pub mod gateway;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod operation;
pub mod platform;
pub mod secrets;
pub mod token;
pub mod wechat;

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tracing::Level;

pub use config::Config;
pub use error::Error;
pub use metrics::Usage;
pub use operation::{Operation, Request};
use platform::Platform;
use token::{DurableStore, MemoryStore, RedisStore, TokenProvider, TokenStore};
use wechat::codes::{self, Class};
use wechat::{errcode, errmsg, Answer, WeChatClient};

/// The pause before the one retry of a read that WeChat answered with `-1`.
const BUSY_BACKOFF: Duration = Duration::from_millis(100);

/// What one container holds across invocations: the HTTP client and the token provider.
pub struct App {
    client: WeChatClient,
    tokens: Tokens,
    gateway_key: Option<secrecy::SecretString>,
    metrics: bool,
}

/// Where this container's access tokens come from.
enum Tokens {
    /// `WX_ACCESS_TOKEN`: used as it is, never fetched, never refreshed.
    Fixed(secrecy::SecretString),
    Fetched(TokenProvider),
    /// A third-party platform's: each event's mini program has its own authorizer token.
    Platform(Platform),
}

impl App {
    /// The container's state for `config`, whose credentials must be complete (see [`Config::resolve`]).
    pub fn new(config: &Config) -> Result<App, Error> {
        let client = WeChatClient::new(&config.api_base).map_err(Error::Config)?;
        let redis = match &config.token_cache {
            config::TokenCache::Memory => None,
            config::TokenCache::Redis(url) => Some(Arc::new(
                RedisStore::new(url.expose_secret()).map_err(|why| Error::Config(format!("WX_TOKEN_CACHE: {why}")))?,
            )),
        };
        let shared = redis.clone().map(|r| r as Arc<dyn TokenStore>);
        let tokens = match &config.credentials {
            config::Credentials::Fixed { token } => Tokens::Fixed(token.clone()),
            config::Credentials::App { appid, secret } => {
                Tokens::Fetched(TokenProvider::new(config.token_endpoint, appid, secret.clone(), shared))
            }
            config::Credentials::Platform(platform) => {
                let durable: Arc<dyn DurableStore> = match redis {
                    Some(redis) => redis,
                    None => {
                        tracing::warn!(
                            "third-party platform with WX_TOKEN_CACHE=memory: the ticket and refresh tokens live in \
                             this instance only and die with it; set a redis:// URL for any real deployment"
                        );
                        Arc::new(MemoryStore::default())
                    }
                };
                Tokens::Platform(Platform::new(platform, durable, shared)?)
            }
            config::Credentials::Stored { secret, .. } => {
                return Err(Error::Config(format!("{} has not been read yet (Config::resolve)", secret.variable())))
            }
        };
        Ok(App { client, tokens, gateway_key: config.gateway_key.clone(), metrics: config.metrics })
    }

    /// The cold start: the environment read once, a stored secret fetched, the state built.
    pub async fn from_env() -> Result<App, Error> {
        let config = Config::from_env()?.resolve(|name| std::env::var(name).ok()).await?;
        App::new(&config)
    }

    /// One invocation's payload as the Runtime API delivers it: JSON, or refused as [`Error::InvalidEvent`] with its
    /// record like any other invalid event (Lambda's Invoke API takes only JSON; local runtimes pass anything).
    pub async fn handle_payload(&self, payload: &[u8], deadline: Instant, request_id: &str) -> Result<Value, Error> {
        let started = Instant::now();
        match serde_json::from_slice(payload) {
            Ok(event) => self.handle(event, deadline, request_id).await,
            Err(e) => {
                let error = Error::InvalidEvent { method: "", detail: format!("the event is not JSON ({e})") };
                let result = Err(error);
                self.record(request_id, "", &Done::of(&result, "invalid", Usage::default(), started), None);
                result
            }
        }
    }

    /// One invocation as Lambda delivers it: a direct call, or a gateway's HTTP request (answered in the gateway's
    /// shape, so the invocation itself succeeds). Either way it writes one record.
    pub async fn handle(&self, event: Value, deadline: Instant, request_id: &str) -> Result<Value, Error> {
        let (gateway, request) = match gateway::recognise(event) {
            gateway::Inbound::Direct(event) => return self.invoke(&event, deadline, request_id).await,
            gateway::Inbound::Http(gateway, request) => (gateway, request),
        };
        let started = Instant::now();
        let http = |status, authorised_by| Some(logging::Http { gateway: gateway.name(), authorised_by, status });
        if let (Some(platform), Ok(request)) = (self.platform(), &request) {
            if let Some(push) = request.push() {
                let (reply, done) = self.receive_push(platform, push, deadline, started).await;
                self.record(request_id, done.dimension, &done, http(reply.status, Some("signature")));
                return Ok(gateway::respond(gateway, reply, Some(request)));
            }
        }
        let admitted = request.as_ref().map_err(Clone::clone).and_then(|r| r.admit(self.gateway_key.as_ref()));
        let reply = match admitted {
            Ok(event) => {
                let (result, done) = self.call(&event, deadline, started).await;
                let reply = match result {
                    Ok(result) => gateway::Reply::ok(result),
                    Err(e) => gateway::Reply::from_error(&e),
                };
                let authorised_by = request.as_ref().ok().map(gateway::HttpRequest::authorised_by);
                self.record(request_id, action_of(&event), &done, http(reply.status, authorised_by));
                reply
            }
            Err(refusal) => {
                // Refused at the edge, WeChat never called: still its record.
                let done = Done::edge("refused", Level::WARN, &refusal, None, started);
                self.record(request_id, "refused", &done, http(refusal.status, None));
                refusal
            }
        };
        Ok(gateway::respond(gateway, reply, request.as_ref().ok()))
    }

    /// A push to the platform's authorisation-event URL: `success` once it is verified and kept.
    async fn receive_push(
        &self,
        platform: &Platform,
        push: Result<(platform::push::Signed<'_>, String), gateway::Reply>,
        deadline: Instant,
        started: Instant,
    ) -> (gateway::Reply, Done) {
        let (signed, body) = match push {
            Ok(push) => push,
            Err(refusal) => {
                let done = Done::edge("push_refused", Level::WARN, &refusal, None, started);
                return (refusal, done);
            }
        };
        match platform.receive(&self.client, &signed, &body, deadline).await {
            Ok(handled) => {
                let (dimension, err_code, authorizer) = match handled {
                    platform::Handled::Ticket { .. } => ("push_ticket", 0, None),
                    platform::Handled::Authorized(a) => ("push_authorized", 0, Some(a.authorizer_appid)),
                    platform::Handled::Unexchanged { err_code, authorizer_appid } => {
                        ("push_authorized", err_code, Some(authorizer_appid))
                    }
                    platform::Handled::Unauthorized { authorizer_appid } => {
                        ("push_unauthorized", 0, Some(authorizer_appid))
                    }
                    platform::Handled::Other { .. } => ("push_other", 0, None),
                };
                let reply = gateway::Reply::success();
                let mut done = Done::edge(dimension, Level::INFO, &reply, None, started);
                (done.err_code, done.authorizer) = (err_code, authorizer);
                (reply, done)
            }
            Err(failure) => {
                let reply = gateway::Reply::failed(failure.status(), failure.code(), &failure.to_string());
                let dimension = match failure {
                    platform::PushFailure::Unstored(_) => "push_unstored",
                    _ => "push_refused",
                };
                let done = Done::edge(dimension, Level::WARN, &reply, Some(failure.to_string()), started);
                (reply, done)
            }
        }
    }

    /// One direct call, with its record: the event in, the result or the error out.
    pub async fn invoke(&self, event: &Value, deadline: Instant, request_id: &str) -> Result<Value, Error> {
        let (result, done) = self.call(event, deadline, Instant::now()).await;
        self.record(request_id, action_of(event), &done, None);
        result
    }

    /// The call an event asks for: validated, made, timed and counted.
    async fn call(&self, event: &Value, deadline: Instant, started: Instant) -> (Result<Value, Error>, Done) {
        let request = Request::from_event(event).and_then(|request| self.check_mode(request));
        let mut usage = Usage::default();
        let (result, dimension) = match request {
            Ok(request) => (self.execute(&request, deadline, &mut usage).await, request.operation.name()),
            Err(e) => (Err(e), "invalid"),
        };
        let done = Done::of(&result, dimension, usage, started);
        (result, done)
    }

    /// Writes an invocation's one line.
    fn record(&self, request_id: &str, action: &str, done: &Done, http: Option<logging::Http>) {
        let sample = metrics::Sample {
            dimension: done.dimension,
            err_code: done.err_code,
            latency_ms: done.latency_ms,
            usage: done.usage,
            request_id,
        };
        logging::Record {
            sample,
            level: done.level,
            action,
            error_type: done.error_type,
            err_msg: done.err_msg.as_deref(),
            authorizer: done.authorizer.as_deref(),
            http,
        }
        .emit(self.metrics);
    }

    /// A platform acts only for a named mini program; a single mini program's function for no other.
    fn check_mode(&self, request: Request) -> Result<Request, Error> {
        match (&self.tokens, &request.authorizer_appid) {
            (Tokens::Platform(_), None) => Err(missing_authorizer(&request.operation)),
            (Tokens::Fixed(_) | Tokens::Fetched(_), Some(_)) => Err(Error::InvalidEvent {
                method: request.operation.method(),
                detail: format!(
                    "field {} is for a third-party platform (WX_COMPONENT_APPID); this function acts for one mini \
                     program only",
                    operation::AUTHORIZER_FIELD
                ),
            }),
            _ => Ok(request),
        }
    }

    /// The third-party platform this function acts as, if it does.
    pub fn platform(&self) -> Option<&Platform> {
        match &self.tokens {
            Tokens::Platform(platform) => Some(platform),
            _ => None,
        }
    }

    pub fn client(&self) -> &WeChatClient {
        &self.client
    }

    /// Sends `op` to WeChat and reads the answer. Retries only what cannot change anything twice: a call refused for
    /// its token (once, after a refresh) and a read answered with `-1` (once). A failed exchange is never resent: a
    /// change may have happened, and the deadline bounds every exchange anyway.
    pub async fn execute(&self, request: &Request, deadline: Instant, usage: &mut Usage) -> Result<Value, Error> {
        let op = &request.operation;
        let body = op.body();
        let (mut refreshed, mut busy_retried) = (false, false);
        loop {
            let (token, acquired) = match (&self.tokens, request.authorizer_appid.as_deref()) {
                (Tokens::Fixed(token), _) => (token.clone(), token::Acquired::Cached),
                (Tokens::Fetched(provider), _) => {
                    provider.token(&self.client, deadline).await.map_err(|e| e.for_method(op.method()))?
                }
                (Tokens::Platform(platform), Some(authorizer)) => platform
                    .authorizer_token(&self.client, authorizer, deadline)
                    .await
                    .map_err(|e| e.for_method(op.method()))?,
                (Tokens::Platform(_), None) => return Err(missing_authorizer(op)),
            };
            match acquired {
                token::Acquired::Cached => usage.token_cache_hits += 1,
                token::Acquired::Fetched => usage.token_fetches += 1,
            }
            usage.wechat_calls += 1;
            let answer = self
                .client
                .call(op.path(), &token, &body, deadline)
                .await
                .map_err(|failure| Error::Upstream { method: op.method(), failure })?;
            let code = errcode(&answer);
            match codes::class(code) {
                Class::Ok => return Ok(finish(op.method(), answer)),
                Class::StaleToken if !refreshed && !matches!(self.tokens, Tokens::Fixed(_)) => {
                    refreshed = true;
                    tracing::debug!(err_code = code, "token refused by WeChat; fetching another and retrying once");
                    match (&self.tokens, request.authorizer_appid.as_deref()) {
                        (Tokens::Fetched(provider), _) => provider.invalidate(&token, deadline).await,
                        (Tokens::Platform(platform), Some(authorizer)) => {
                            platform.invalidate_authorizer_token(authorizer, &token, deadline).await
                        }
                        _ => {}
                    }
                }
                Class::Busy if op.is_read_only() && !busy_retried && time_for(BUSY_BACKOFF, deadline) => {
                    busy_retried = true;
                    tokio::time::sleep(BUSY_BACKOFF).await;
                }
                _ => return Err(Error::WxApi { method: op.method(), errcode: code, errmsg: errmsg(&answer) }),
            }
        }
    }
}

/// What an invocation did, as its record tells it.
struct Done {
    /// The metric dimension: the operation's name, `invalid`, `refused` or `push_*`.
    dimension: &'static str,
    level: Level,
    err_code: i64,
    error_type: Option<&'static str>,
    err_msg: Option<String>,
    /// The mini program an authorisation push was about.
    authorizer: Option<String>,
    usage: Usage,
    latency_ms: f64,
}

impl Done {
    fn of(result: &Result<Value, Error>, dimension: &'static str, usage: Usage, started: Instant) -> Done {
        let error = result.as_ref().err();
        Done {
            dimension,
            level: if error.is_some() { Level::WARN } else { Level::INFO },
            err_code: error.map_or(0, Error::err_code),
            error_type: error.map(Error::kind),
            err_msg: error.map(ToString::to_string),
            authorizer: None,
            usage,
            latency_ms: elapsed_ms(started),
        }
    }

    /// A request answered at the HTTP edge (a refusal, a push) rather than by a call to WeChat.
    fn edge(
        dimension: &'static str,
        level: Level,
        reply: &gateway::Reply,
        err_msg: Option<String>,
        started: Instant,
    ) -> Done {
        let err_code = reply.body["errCode"].as_i64().unwrap_or_default();
        let (usage, latency_ms) = (Usage::default(), elapsed_ms(started));
        Done { dimension, level, err_code, error_type: None, err_msg, authorizer: None, usage, latency_ms }
    }
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// The event's own `action`, even one we do not know (the record escapes whatever it holds).
fn action_of(event: &Value) -> &str {
    event.get("action").and_then(Value::as_str).unwrap_or_default()
}

fn missing_authorizer(op: &Operation) -> Error {
    Error::InvalidEvent {
        method: op.method(),
        detail: format!(
            "missing field {}: acting as a third-party platform, the function needs the appid of the mini program \
             it acts for",
            operation::AUTHORIZER_FIELD
        ),
    }
}

/// Whether a pause of `pause` still leaves time for another exchange.
fn time_for(pause: Duration, deadline: Instant) -> bool {
    wechat::client::time_left(deadline).is_some_and(|left| left > pause * 2)
}

/// wx-server-sdk's result: WeChat's fields without errcode/errmsg, keys in camelCase, then errMsg and errCode.
pub fn success(method: &str, answer: Answer) -> Value {
    finish(method, case::convert_map(answer, case::snake_to_camel))
}

/// [`success`] for an answer whose keys are camelCase already, as [`WeChatClient::call`] reads them.
fn finish(method: &str, mut answer: Answer) -> Value {
    answer.shift_remove("errcode");
    answer.shift_remove("errmsg");
    answer.insert("errMsg".into(), Value::String(error::ok_message(method)));
    answer.insert("errCode".into(), json!(0));
    Value::Object(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_matches_wx_server_sdk() {
        let answer = json!({
            "errcode": 0, "errmsg": "ok",
            "plugin_list": [{"appid":"wxa","status":2,"nickname":"n","headimgurl":"http://x","extra_field":{"deep_key":1}}],
        });
        let result = success("getPluginList", answer.as_object().unwrap().clone());
        assert_eq!(
            result,
            json!({
                "pluginList": [{"appid":"wxa","status":2,"nickname":"n","headimgurl":"http://x","extraField":{"deepKey":1}}],
                "errMsg": "openapi.pluginManager.getPluginList:ok",
                "errCode": 0,
            })
        );
        let bare = success("unbindPlugin", json!({"errcode":0,"errmsg":"ok"}).as_object().unwrap().clone());
        assert_eq!(bare.to_string(), r#"{"errMsg":"openapi.pluginManager.unbindPlugin:ok","errCode":0}"#);
    }
}
