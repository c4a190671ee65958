//! The Embedded Metric Format line each invocation writes, through the real binary; and that it can be switched off.

use crate::support::setup::Setup;
use serde_json::{json, Value};
use wechat_emulator::{Fault, DEMO_APPID};

fn records(output: &str) -> Vec<Value> {
    output.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|v| v.get("_aws").is_some()).collect()
}

#[test]
fn each_invocation_writes_one_metrics_record() {
    let s = Setup::new(&[]);
    s.succeeds(json!({"action":"list"}));
    s.succeeds(json!({"action":"list"}));
    s.emu.invalidate_tokens(DEMO_APPID);
    s.succeeds(json!({"action":"dev_apply_list","page":1,"num":2}));
    s.emu.script("/wxa/plugin", Fault::Errcode { errcode: 89243, errmsg: None }, 1);
    s.fails(json!({"action":"unbind","pluginAppid":"wxpluginchat0001"}));
    s.fails(json!({"action":"unbind","pluginAppId":"x"}));
    assert!(s.function.wait_for_output("\"Action\":\"invalid\"", std::time::Duration::from_secs(5)));
    let got = records(&s.function.output());
    assert_eq!(got.len(), 5, "one record per invocation");
    let fields = |r: &Value| {
        let n = |k: &str| r[k].as_i64().unwrap();
        (
            r["Action"].as_str().unwrap().to_owned(),
            n("ErrCode"),
            n("TokenFetches"),
            n("TokenCacheHits"),
            n("WeChatCalls"),
        )
    };
    assert_eq!(fields(&got[0]), ("list".into(), 0, 1, 0, 1));
    assert_eq!(fields(&got[1]), ("list".into(), 0, 0, 1, 1));
    // Invalidated: the cached token fails, another is fetched, the call is retried.
    assert_eq!(fields(&got[2]), ("dev_apply_list".into(), 0, 1, 1, 2));
    assert_eq!(fields(&got[3]), ("unbind".into(), 89243, 0, 1, 1));
    assert_eq!(fields(&got[4]), ("invalid".into(), -501007, 0, 0, 0));
    assert_eq!(got[3]["Errors"], 1);
    assert!(got.iter().all(|r| r["Latency"].as_f64().unwrap() >= 0.0 && r["RequestId"].is_string()));
    assert_eq!(got[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"], "WxPluginManager");
}

#[test]
fn metrics_can_be_switched_off() {
    let s = Setup::new(&[("WX_METRICS", "off")]);
    s.succeeds(json!({"action":"list"}));
    assert!(s.function.wait_for_output("\"message\":\"invocation\"", std::time::Duration::from_secs(5)));
    assert!(records(&s.function.output()).is_empty());
}

#[test]
fn a_request_refused_at_the_http_edge_is_recorded_too() {
    let s = Setup::new(&[]);
    let path = format!("{}/events/http-api-anonymous.json", env!("CARGO_MANIFEST_DIR"));
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(s.api.invoke(&event, crate::support::setup::TIMEOUT).response()["statusCode"], 401);
    assert!(s.function.wait_for_output("\"message\":\"http\"", std::time::Duration::from_secs(5)));
    let output = s.function.output();
    let got = records(&output);
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0]["Action"].as_str(), got[0]["ErrCode"].as_i64(), got[0]["Errors"].as_i64()),
        (Some("refused"), Some(-401), Some(1))
    );
    assert_eq!(got[0]["WeChatCalls"], 0);
    let http_line = output.lines().find(|l| l.contains("\"message\":\"http\"")).unwrap();
    assert!(!http_line.contains("authorised_by"), "a refused request was authorised by nothing: {http_line}");
}
