//! What the real binary writes: one JSON line per invocation (its log fields and its EMF metrics together), nothing
//! at DEBUG unless asked, a failure logged once, and Lambda's own logging controls honoured when RUST_LOG is unset.

use std::time::Duration;

use crate::support::function::Function;
use crate::support::runtime_api::RuntimeApi;
use crate::support::setup::{Setup, TIMEOUT};
use serde_json::{json, Value};
use wechat_emulator::{Emulator, Fault, DEMO_APPID, DEMO_SECRET};

const WAIT: Duration = Duration::from_secs(5);

/// Every line the function wrote so far, once `needle` has appeared.
#[track_caller]
fn lines_after(s: &Setup, needle: &str) -> Vec<String> {
    assert!(s.function.wait_for_output(needle, WAIT), "no {needle} in:\n{}", s.function.output());
    s.function.output().lines().map(str::to_owned).collect()
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
}

#[test]
fn each_successful_invocation_writes_one_line_with_its_log_fields_and_metrics() {
    let s = Setup::new(&[]);
    s.succeeds(json!({"action":"list"})); // fetches the token
    s.succeeds(json!({"action":"list"}));
    let path = format!("{}/events/http-api-iam.json", env!("CARGO_MANIFEST_DIR"));
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(s.api.invoke(&event, TIMEOUT).response()["statusCode"], 200);
    let lines = lines_after(&s, "\"message\":\"http\"");
    assert_eq!(lines.len(), 3, "one line per invocation, cold start included: {lines:#?}");
    for (line, message) in lines.iter().zip(["invocation", "invocation", "http"]) {
        let line = json(line);
        assert_eq!((line["level"].as_str(), line["message"].as_str()), (Some("INFO"), Some(message)), "{line}");
        assert_eq!((line["err_code"].as_i64(), line["ErrCode"].as_i64()), (Some(0), Some(0)), "{line}");
        assert!(line["request_id"].is_string() && line["request_id"] == line["RequestId"], "{line}");
        assert!(line["latency_ms"].is_number() && line["Latency"].is_number(), "{line}");
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "WxPluginManager", "{line}");
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{line}");
    }
    let http = json(&lines[2]);
    assert_eq!((http["gateway"].as_str(), http["status"].as_u64()), (Some("http_api"), Some(200)));
    assert_eq!(http["authorised_by"], "iam");
}

#[test]
fn every_header_lambda_sends_is_accepted_and_each_line_names_its_xray_trace() {
    let emu = Emulator::start().unwrap();
    let api = RuntimeApi::start_sending_every_header();
    let env = [("WX_APPID", DEMO_APPID), ("WX_SECRET", DEMO_SECRET), ("WX_API_BASE", emu.base_url())];
    let function = Function::spawn(&api, &env);
    assert_eq!(api.invoke(&json!({"action":"list"}), TIMEOUT).response()["errCode"], 0);
    let path = format!("{}/events/http-api-iam.json", env!("CARGO_MANIFEST_DIR"));
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(api.invoke(&event, TIMEOUT).response()["statusCode"], 200);
    assert!(function.wait_for_output("\"message\":\"http\"", WAIT), "{}", function.output());
    let lines: Vec<Value> = function.output().lines().map(json).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    // The n-th invocation's trace Root ends in n as 24 hex digits, its request id in n as 12.
    for (n, line) in (1..).zip(&lines) {
        let trace = line["xray_trace_id"].as_str().unwrap_or_else(|| panic!("no xray_trace_id: {line}"));
        assert!(trace.starts_with("1-") && trace.ends_with(&format!("-{n:024x}")), "{line}");
        assert!(line["request_id"].as_str().unwrap().ends_with(&format!("-{n:012x}")), "{line}");
    }
}

#[test]
fn a_success_after_a_refused_token_is_still_one_line() {
    let s = Setup::new(&[]);
    s.succeeds(json!({"action":"list"}));
    s.emu.invalidate_tokens(DEMO_APPID);
    s.succeeds(json!({"action":"list"})); // refused token, another fetched, the call made again
    let lines = lines_after(&s, "\"WeChatCalls\":2");
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!((json(&lines[1])["TokenFetches"].as_u64(), json(&lines[1])["level"].as_str()), (Some(1), Some("INFO")));
}

#[test]
fn a_failed_invocation_is_logged_once_as_json() {
    let s = Setup::new(&[]);
    s.emu.script("/wxa/plugin", Fault::Errcode { errcode: 89243, errmsg: None }, 1);
    let (kind, code, _) = s.fails(json!({"action":"unbind","pluginAppid":"wxpluginchat0001"}));
    assert_eq!((kind.as_str(), code), ("WxApiError", 89243));
    lines_after(&s, "\"ErrCode\":89243");
    std::thread::sleep(Duration::from_millis(200)); // anything written after the record would show up by now
    let lines: Vec<Value> = s.function.output().lines().map(json).collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    assert_eq!((line["level"].as_str(), line["error_type"].as_str()), (Some("WARN"), Some("WxApiError")), "{line}");
    assert_eq!((line["err_code"].as_i64(), line["Errors"].as_i64()), (Some(89243), Some(1)), "{line}");
    assert!(line["err_msg"].as_str().unwrap().contains("unbindPlugin:fail"), "{line}");
}

#[test]
fn a_payload_that_is_not_json_is_an_invalid_event_with_its_record() {
    let s = Setup::new(&[]);
    let (kind, message) = s.api.invoke_raw(b"action=list \xff", TIMEOUT).error();
    assert_eq!(kind, "InvalidEvent");
    let thrown: Value = serde_json::from_str(&message).unwrap();
    assert_eq!(thrown["errCode"], -501007, "{thrown}");
    assert!(thrown["errMsg"].as_str().unwrap().contains("the event is not JSON"), "{thrown}");
    let lines = lines_after(&s, "\"Action\":\"invalid\"");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(json(&lines[0])["error_type"], "InvalidEvent");
    assert_eq!(s.plugin_calls() + s.emu.count("/cgi-bin/stable_token"), 0, "nothing went to WeChat");
    // The process serves on.
    assert_eq!(s.succeeds(json!({"action":"list"}))["errCode"], 0);
}

#[test]
fn nothing_is_written_at_debug_level_unless_asked() {
    let quiet = Setup::new(&[]);
    quiet.succeeds(json!({"action":"list"}));
    quiet.fails(json!({"action":"unbind"}));
    let lines = lines_after(&quiet, "\"Action\":\"invalid\"");
    assert!(lines.iter().all(|l| !l.contains("\"level\":\"DEBUG\"") && !l.contains("\"level\":\"TRACE\"")));
    assert_eq!(lines.len(), 2, "{lines:#?}");

    let verbose = Setup::new(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]);
    verbose.succeeds(json!({"action":"list"}));
    let lines = lines_after(&verbose, "\"Action\":\"list\"");
    assert!(lines.iter().any(|l| l.contains("\"level\":\"DEBUG\"")), "AWS_LAMBDA_LOG_LEVEL=DEBUG: {lines:#?}");
}

#[test]
fn above_info_lambdas_level_still_gets_the_metrics_through_its_filter() {
    let s = Setup::new(&[("AWS_LAMBDA_LOG_LEVEL", "WARN"), ("AWS_LAMBDA_LOG_FORMAT", "JSON")]);
    s.succeeds(json!({"action":"list"}));
    s.fails(json!({"action":"unbind"}));
    let lines: Vec<Value> = lines_after(&s, "\"Action\":\"invalid\"").iter().map(|l| json(l)).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    // The success's log fields are off at WARN; its metrics carry Lambda's level, which Lambda's filter keeps.
    assert_eq!((lines[0]["level"].as_str(), lines[0]["message"].as_str()), (Some("WARN"), Some("metrics")));
    assert!(lines[0].get("request_id").is_none() && lines[0]["Action"] == "list", "{}", lines[0]);
    assert_eq!((lines[1]["level"].as_str(), lines[1]["message"].as_str()), (Some("WARN"), Some("invocation")));

    let off = Setup::new(&[("AWS_LAMBDA_LOG_LEVEL", "WARN"), ("WX_METRICS", "off")]);
    off.succeeds(json!({"action":"list"}));
    off.fails(json!({"action":"unbind"}));
    let lines = lines_after(&off, "\"error_type\":\"InvalidEvent\"");
    assert_eq!(lines.len(), 1, "nothing for the success: {lines:#?}");
}

#[test]
fn rust_log_overrides_lambdas_level_and_text_format_keeps_records_json() {
    let s = Setup::new(&[("RUST_LOG", "debug"), ("AWS_LAMBDA_LOG_LEVEL", "ERROR"), ("AWS_LAMBDA_LOG_FORMAT", "Text")]);
    s.succeeds(json!({"action":"list"}));
    let lines = lines_after(&s, "\"Action\":\"list\"");
    let (records, text): (Vec<&String>, Vec<&String>) = lines.iter().partition(|l| l.starts_with('{'));
    assert_eq!(records.len(), 1, "{lines:#?}");
    assert_eq!(json(records[0])["level"], "INFO");
    assert!(text.iter().any(|l| l.contains("DEBUG") && l.contains("invocation received")), "{lines:#?}");
}
