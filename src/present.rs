//! The wire shapes of what the function answers, kept apart from the values they are made from (as lambda-runtime
//! keeps its `Diagnostic` apart from the errors it reports): wx-server-sdk's `errMsg` texts, a plugin call's result in
//! the cloud call's camelCase, a thrown error's `{errCode, errMsg}` and Lambda's `{errorType, errorMessage}`.

use serde::de::DeserializeSeed;
use serde_json::{json, Map, Value};

use crate::case::{self, CamelKeys};

/// How much of a broken answer an error quotes.
const EXCERPT: usize = 200;

/// The `<method>` of an errMsg when no method is known (an event whose action cannot be read, a configuration error,
/// a platform chore): the text is `openapi.pluginManager:fail …`.
pub const NO_METHOD: &str = "";

/// `openapi.pluginManager.<method>`, or `openapi.pluginManager` when no method is known.
pub fn prefix(method: &str) -> String {
    prefixed(method, "")
}

/// `openapi.pluginManager.<method>:ok`, a success's errMsg.
pub fn ok_message(method: &str) -> String {
    prefixed(method, ":ok")
}

/// `openapi.pluginManager.<method>:fail <why>`, a failure's errMsg.
pub fn fail_message(method: &str, why: std::fmt::Arguments<'_>) -> String {
    format!("{}:fail {why}", prefix(method))
}

/// The prefix and `suffix`, in one allocation and without the formatting machinery: a success's errMsg is built on
/// every invocation's path.
fn prefixed(method: &str, suffix: &str) -> String {
    const PREFIX: &str = "openapi.pluginManager";
    let mut text = String::with_capacity(PREFIX.len() + 1 + method.len() + suffix.len());
    text.push_str(PREFIX);
    if !method.is_empty() {
        text.push('.');
        text.push_str(method);
    }
    text.push_str(suffix);
    text
}

/// A plugin call's plain answer as a JSON object whose keys are already the cloud call's camelCase (`errcode` and
/// `errmsg` read the same either way), read in one pass where reading and then converting builds every map twice.
/// Anything else is WeChat's broken answer: the error is the part of it to quote (at most 200 characters).
pub fn camel_object(text: &[u8]) -> Result<Map<String, Value>, String> {
    let mut json = serde_json::Deserializer::from_slice(text);
    match CamelKeys.deserialize(&mut json).and_then(|answer| json.end().map(|()| answer)) {
        Ok(Value::Object(answer)) => Ok(answer),
        _ => Err(excerpt(text)),
    }
}

/// The fields of a sealed answer (read as WeChat wrote them) with the cloud call's camelCase keys.
pub fn camel_fields(fields: Map<String, Value>) -> Map<String, Value> {
    case::convert_map(fields, case::snake_to_camel)
}

/// wx-server-sdk's result for a successful answer already in camelCase: WeChat's fields without errcode/errmsg, then
/// errMsg and errCode.
pub fn success(method: &str, mut answer: Map<String, Value>) -> Value {
    answer.shift_remove("errcode");
    answer.shift_remove("errmsg");
    answer.insert("errMsg".into(), Value::String(ok_message(method)));
    answer.insert("errCode".into(), json!(0));
    Value::Object(answer)
}

/// `{"errCode":N,"errMsg":"…"}`: what wx-server-sdk throws.
pub fn thrown(err_code: i64, err_msg: String) -> Value {
    json!({ "errCode": err_code, "errMsg": err_msg })
}

/// `{"errorType":…,"errorMessage":…}`: a failed invocation (or init) as Lambda reports it, the thrown JSON as text.
pub fn lambda_error(error_type: &str, thrown: &Value) -> Value {
    json!({ "errorType": error_type, "errorMessage": thrown.to_string() })
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(EXCERPT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(method: &str, answer: &str) -> Value {
        success(method, camel_object(answer.as_bytes()).unwrap())
    }

    #[test]
    fn ok_message_is_the_prefix_and_ok() {
        assert_eq!(ok_message("getPluginList"), format!("{}:ok", prefix("getPluginList")));
        assert_eq!(ok_message(""), "openapi.pluginManager:ok");
    }

    #[test]
    fn an_opened_answer_is_presented_as_a_plain_one() {
        let wechat = r#"{"errcode":0,"errmsg":"ok","plugin_list":[{"appid":"wxa","head_img":"x"}]}"#;
        let opened = camel_fields(serde_json::from_str(wechat).unwrap());
        assert_eq!(success("getPluginList", opened), result("getPluginList", wechat));
    }

    #[test]
    fn an_answer_that_is_not_a_json_object_is_quoted_up_to_200_characters() {
        let long = "<html>".repeat(50);
        let quoted = camel_object(long.as_bytes()).unwrap_err();
        assert_eq!(quoted.chars().count(), 201, "200 characters and an ellipsis");
        assert_eq!(camel_object(b"[1]").unwrap_err(), "[1]");
    }

    #[test]
    // Moved from call/mod.rs with `success`, under the same names.
    fn success_matches_wx_server_sdk() {
        let answer = json!({
            "errcode": 0, "errmsg": "ok",
            "plugin_list": [{"appid":"wxa","status":2,"nickname":"n","headimgurl":"http://x","extra_field":{"deep_key":1}}],
        });
        let presented = result("getPluginList", &answer.to_string());
        assert_eq!(
            presented,
            json!({
                "pluginList": [{"appid":"wxa","status":2,"nickname":"n","headimgurl":"http://x","extraField":{"deepKey":1}}],
                "errMsg": "openapi.pluginManager.getPluginList:ok",
                "errCode": 0,
            })
        );
        let bare = result("unbindPlugin", r#"{"errcode":0,"errmsg":"ok"}"#);
        assert_eq!(bare.to_string(), r#"{"errMsg":"openapi.pluginManager.unbindPlugin:ok","errCode":0}"#);
    }

    #[test]
    fn success_text_is_wx_server_sdk_text() {
        // wx-server-sdk 4.0.2's result for this answer, as JSON.stringify writes it: renamed keys after the others.
        let answer = r#"{"errcode":0,"errmsg":"ok","apply_list":[{"appid":"wxa","status":2,"create_time":"1700000000","apply_url":"https://x","reason":"r","categories":[{"first":"IT"}]}]}"#;
        assert_eq!(
            result("getPluginDevApplyList", answer).to_string(),
            r#"{"applyList":[{"appid":"wxa","status":2,"reason":"r","categories":[{"first":"IT"}],"createTime":"1700000000","applyUrl":"https://x"}],"errMsg":"openapi.pluginManager.getPluginDevApplyList:ok","errCode":0}"#
        );
    }
}
