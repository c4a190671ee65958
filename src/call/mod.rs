//! The one call path: an event → a [`Request`] → its token → WeChat → wx-server-sdk's result, with the retry policy.
//!
//! [`source`] says where the token comes from; this knows nothing of Lambda or HTTP.

mod source;

pub use source::TokenSource;

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{Error, Failure};
use crate::observe::{Outcome, Usage};
use crate::operation::Request;
use crate::present;
use crate::token::Acquired;
use crate::wechat::client::time_left;
use crate::wechat::{errcode, errmsg, Answer, PluginAnswer, WeChatClient};
use source::RequestToken;
use wechat_wire::codes::{self, Class};

/// The pause before the one retry of a read that WeChat answered with `-1`.
const BUSY_BACKOFF: Duration = Duration::from_millis(100);

/// Makes plugin calls: the HTTP client and where its tokens come from.
pub struct PluginCaller {
    /// The HTTP client; also for the WeChat calls outside the plugin path (a platform's pushes and code exchanges).
    pub client: WeChatClient,
    /// Where the tokens come from; [`TokenSource::platform`] is the third-party platform, if the function is one.
    pub tokens: TokenSource,
}

impl PluginCaller {
    /// Built once per container, by [`App::new`](crate::app::App::new).
    pub fn new(client: WeChatClient, tokens: TokenSource) -> PluginCaller {
        PluginCaller { client, tokens }
    }

    /// The call an event asks for: validated, made, timed and counted.
    pub(crate) async fn call(
        &self,
        event: &Value,
        deadline: Instant,
        started: Instant,
    ) -> (Result<Value, Error>, Outcome) {
        let invalid = |e: Error| {
            let result = Err(e);
            let outcome = Outcome::of(&result, "invalid", Usage::default(), started);
            (result, outcome)
        };
        let request = match Request::from_event(event) {
            Ok(request) => request,
            Err(e) => return invalid(e),
        };
        let token = match self.tokens.for_request(&request) {
            Ok(token) => token,
            Err(e) => return invalid(e),
        };
        let mut usage = Usage::default();
        let result = self.send(&request, &token, deadline, &mut usage).await;
        let outcome = Outcome::of(&result, request.operation.name(), usage, started);
        (result, outcome)
    }

    /// Sends `request` to WeChat and reads the answer. Retries only what cannot change anything twice: a call refused
    /// for its token (once, after a refresh) and a read answered with `-1` (once). A failed exchange is never resent:
    /// a change may have happened, and the deadline bounds every exchange anyway.
    pub async fn execute(&self, request: &Request, deadline: Instant, usage: &mut Usage) -> Result<Value, Error> {
        let token = self.tokens.for_request(request)?;
        self.send(request, &token, deadline, usage).await
    }

    async fn send(
        &self,
        request: &Request,
        token_source: &RequestToken<'_>,
        deadline: Instant,
        usage: &mut Usage,
    ) -> Result<Value, Error> {
        let op = &request.operation;
        let body = op.body();
        let (mut refreshed, mut busy_retried) = (false, false);
        loop {
            let (token, acquired) =
                token_source.get(&self.client, deadline).await.map_err(|e| e.for_method(op.method()))?;
            match acquired {
                Acquired::Cached => usage.token_cache_hits += 1,
                Acquired::Fetched => usage.token_fetches += 1,
            }
            usage.wechat_calls += 1;
            let upstream = |failure| Error::Upstream { method: op.method(), failure };
            let answer = self.client.call(op.path(), &token, &body, deadline).await.map_err(upstream)?;
            let answer = read(answer).map_err(upstream)?;
            let code = errcode(&answer);
            match codes::class(code) {
                Class::Ok => return Ok(present::success(op.method(), answer)),
                Class::StaleToken if !refreshed && token_source.refreshable() => {
                    refreshed = true;
                    tracing::debug!(err_code = code, "token refused by WeChat; fetching another and retrying once");
                    token_source.invalidate(&token, deadline).await;
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

/// A plugin call's answer in the cloud call's camelCase, or WeChat's broken answer (quoted in part).
fn read(answer: PluginAnswer) -> Result<Answer, Failure> {
    match answer {
        PluginAnswer::Opened(fields) => Ok(present::camel_fields(fields)),
        PluginAnswer::Text(text) => present::camel_object(&text).map_err(Failure::InvalidJson),
    }
}

/// Whether a pause of `pause` still leaves time for another exchange.
fn time_for(pause: Duration, deadline: Instant) -> bool {
    time_left(deadline).is_some_and(|left| left > pause * 2)
}
