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

pub use config::Config;
pub use error::Error;
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

/// What one invocation took from the token provider and from WeChat.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub token_fetches: u32,
    pub token_cache_hits: u32,
    /// Plugin-endpoint calls (retries included).
    pub wechat_calls: u32,
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

    /// One invocation as Lambda delivers it: a direct call, or a gateway's HTTP request (answered in the gateway's
    /// shape, so the invocation itself succeeds).
    pub async fn handle(&self, event: Value, deadline: Instant, request_id: &str) -> Result<Value, Error> {
        let (gateway, request) = match gateway::recognise(event) {
            gateway::Inbound::Direct(event) => return self.invoke(&event, deadline, request_id).await,
            gateway::Inbound::Http(gateway, request) => (gateway, request),
        };
        let started = Instant::now();
        if let (Some(platform), Ok(http)) = (self.platform(), &request) {
            if let Some(push) = http.push() {
                let reply = self.receive_push(platform, push, deadline, request_id).await;
                tracing::info!(
                    request_id,
                    gateway = gateway.name(),
                    authorised_by = "signature",
                    status = reply.status,
                    "http"
                );
                return Ok(gateway::respond(gateway, reply, Some(http)));
            }
        }
        let admitted = request.as_ref().map_err(Clone::clone).and_then(|r| r.admit(self.gateway_key.as_ref()));
        let (reply, authorised_by) = match admitted {
            Ok(event) => {
                let reply = match self.invoke(&event, deadline, request_id).await {
                    Ok(result) => gateway::Reply::ok(result),
                    Err(e) => gateway::Reply::from_error(&e),
                };
                (reply, request.as_ref().ok().map(gateway::HttpRequest::authorised_by))
            }
            Err(refusal) => {
                // Refused at the edge, WeChat never called: still one log line and one metrics record.
                let err_code = refusal.body["errCode"].as_i64().unwrap_or_default();
                let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                tracing::warn!(request_id, action = "refused", err_code, latency_ms, "invocation");
                if self.metrics {
                    metrics::emit("refused", err_code, latency_ms, &Usage::default(), request_id);
                }
                (refusal, None)
            }
        };
        tracing::info!(request_id, gateway = gateway.name(), authorised_by, status = reply.status, "http");
        Ok(gateway::respond(gateway, reply, request.as_ref().ok()))
    }

    /// A push to the platform's authorisation-event URL: `success` once it is verified and kept.
    async fn receive_push(
        &self,
        platform: &Platform,
        push: Result<(platform::push::Signed<'_>, String), gateway::Reply>,
        deadline: Instant,
        request_id: &str,
    ) -> gateway::Reply {
        let started = Instant::now();
        let (reply, action, err_code) = match push {
            Err(refusal) => {
                let err_code = refusal.body["errCode"].as_i64().unwrap_or_default();
                (refusal, "push_refused", err_code)
            }
            Ok((signed, body)) => match platform.receive(&self.client, &signed, &body, deadline).await {
                Ok(handled) => {
                    let (action, err_code) = match handled {
                        platform::Handled::Ticket { .. } => ("push_ticket", 0),
                        platform::Handled::Authorized(_) => ("push_authorized", 0),
                        platform::Handled::Unexchanged { err_code, .. } => ("push_authorized", err_code),
                        platform::Handled::Unauthorized { .. } => ("push_unauthorized", 0),
                        platform::Handled::Other { .. } => ("push_other", 0),
                    };
                    (gateway::Reply::success(), action, err_code)
                }
                Err(failure) => {
                    tracing::warn!(request_id, err_code = failure.code(), err_msg = %failure, "push not taken");
                    let reply = gateway::Reply::failed(failure.status(), failure.code(), &failure.to_string());
                    let action = match failure {
                        platform::PushFailure::Unstored(_) => "push_unstored",
                        _ => "push_refused",
                    };
                    (reply, action, failure.code())
                }
            },
        };
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::info!(request_id, action, err_code, latency_ms, "invocation");
        if self.metrics {
            metrics::emit(action, err_code, latency_ms, &Usage::default(), request_id);
        }
        reply
    }

    /// One call, logged: the event in, the result or the error out.
    pub async fn invoke(&self, event: &Value, deadline: Instant, request_id: &str) -> Result<Value, Error> {
        let started = Instant::now();
        let request = Request::from_event(event).and_then(|request| self.check_mode(request));
        // The event's own action, even when it is not one we know (JSON logs escape whatever it holds).
        let action = event.get("action").and_then(Value::as_str).unwrap_or_default();
        let mut usage = Usage::default();
        let (result, dimension) = match request {
            Ok(request) => (self.execute(&request, deadline, &mut usage).await, request.operation.name()),
            Err(e) => (Err(e), "invalid"),
        };
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        if self.metrics {
            let err_code = result.as_ref().err().map_or(0, Error::err_code);
            metrics::emit(dimension, err_code, latency_ms, &usage, request_id);
        }
        match &result {
            Ok(_) => tracing::info!(request_id, action, err_code = 0, latency_ms, "invocation"),
            Err(e) => tracing::warn!(
                request_id,
                action,
                err_code = e.err_code(),
                error_type = e.kind(),
                latency_ms,
                err_msg = %e,
                "invocation"
            ),
        }
        result
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
                Class::Ok => return Ok(success(op.method(), answer)),
                Class::StaleToken if !refreshed && !matches!(self.tokens, Tokens::Fixed(_)) => {
                    refreshed = true;
                    tracing::info!(err_code = code, "token refused by WeChat; fetching another and retrying once");
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
pub fn success(method: &str, mut answer: Answer) -> Value {
    answer.shift_remove("errcode");
    answer.shift_remove("errmsg");
    let mut result = case::convert_map(answer, case::snake_to_camel);
    result.insert("errMsg".into(), json!(format!("{}:ok", error::prefix(method))));
    result.insert("errCode".into(), json!(0));
    Value::Object(result)
}

/// Deadlines below this (2001-09-09 in unix ms) are not points in time but a budget: `cargo lambda watch` sends the
/// function's timeout (e.g. 600000) where Lambda sends the epoch deadline.
const EPOCH_DEADLINE_FLOOR_MS: u64 = 1_000_000_000_000;

/// The `Instant` of a Lambda deadline given in unix milliseconds.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let left_ms =
        if deadline_ms < EPOCH_DEADLINE_FLOOR_MS { deadline_ms } else { deadline_ms.saturating_sub(token::now_ms()) };
    Instant::now() + Duration::from_millis(left_ms)
}

/// A cold start that cannot serve: says why in the log and to the Lambda Runtime API (so the init error carries the
/// kind and the message), within two seconds.
pub async fn init_failed(error: &Error) {
    tracing::error!(error_type = error.kind(), err_code = error.err_code(), err_msg = %error, "cold start failed");
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else { return };
    // Lambda gives host:port; `cargo lambda watch` gives a full URL.
    let api = if api.starts_with("http://") { api } else { format!("http://{api}") };
    let body = error.to_lambda_json();
    let Ok(client) = reqwest::Client::builder().timeout(Duration::from_secs(2)).build() else { return };
    let sent = client
        .post(format!("{}/2018-06-01/runtime/init/error", api.trim_end_matches('/')))
        .header("Lambda-Runtime-Function-Error-Type", error.kind())
        .json(&body)
        .send()
        .await;
    if let Err(e) = sent {
        tracing::error!(error = %e.without_url(), "could not report the init error to the Runtime API");
    }
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
