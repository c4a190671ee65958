//! The one call path: an event → a [`Request`] → its token → WeChat → wx-server-sdk's result, with the retry policy.
//!
//! [`source`] says where the token comes from; this knows nothing of Lambda or HTTP.

pub mod source;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::case;
use crate::error::{self, Error};
use crate::observe::{Outcome, Usage};
use crate::operation::Request;
use crate::platform::Platform;
use crate::token::Acquired;
use crate::wechat::{client::time_left, errcode, errmsg, Answer, WeChatClient};
use source::{RequestToken, TokenSource};
use wechat_wire::codes::{self, Class};

/// The pause before the one retry of a read that WeChat answered with `-1`.
const BUSY_BACKOFF: Duration = Duration::from_millis(100);

/// Makes plugin calls: the HTTP client and where its tokens come from.
pub struct PluginCaller {
    client: WeChatClient,
    tokens: TokenSource,
}

impl PluginCaller {
    /// Built once per container, by [`App::new`](crate::app::App::new).
    pub fn new(client: WeChatClient, tokens: TokenSource) -> PluginCaller {
        PluginCaller { client, tokens }
    }

    /// The HTTP client, for the WeChat calls outside the plugin path (a platform's pushes and code exchanges).
    pub fn client(&self) -> &WeChatClient {
        &self.client
    }

    /// The third-party platform this function acts as, if it does.
    pub fn platform(&self) -> Option<&Platform> {
        self.tokens.platform()
    }

    /// The call an event asks for: validated, made, timed and counted.
    pub async fn call(&self, event: &Value, deadline: Instant, started: Instant) -> (Result<Value, Error>, Outcome) {
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
            let answer = self
                .client
                .call(op.path(), &token, &body, deadline)
                .await
                .map_err(|failure| Error::Upstream { method: op.method(), failure })?;
            let code = errcode(&answer);
            match codes::class(code) {
                Class::Ok => return Ok(finish(op.method(), answer)),
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

/// Whether a pause of `pause` still leaves time for another exchange.
fn time_for(pause: Duration, deadline: Instant) -> bool {
    time_left(deadline).is_some_and(|left| left > pause * 2)
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

    #[test]
    fn success_text_is_wx_server_sdk_text() {
        // wx-server-sdk 4.0.2's result for this answer, as JSON.stringify writes it: renamed keys after the others.
        let answer = r#"{"errcode":0,"errmsg":"ok","apply_list":[{"appid":"wxa","status":2,"create_time":"1700000000","apply_url":"https://x","reason":"r","categories":[{"first":"IT"}]}]}"#;
        let answer = serde_json::from_str(answer).unwrap();
        assert_eq!(
            success("getPluginDevApplyList", answer).to_string(),
            r#"{"applyList":[{"appid":"wxa","status":2,"reason":"r","categories":[{"first":"IT"}],"createTime":"1700000000","applyUrl":"https://x"}],"errMsg":"openapi.pluginManager.getPluginDevApplyList:ok","errCode":0}"#
        );
    }
}
