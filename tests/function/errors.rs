//! Every error kind through the real Lambda binary: WeChat refusals, bad events (no WeChat call at all), token
//! failures, upstream failures and deadlines, and configuration refused at cold start.

use std::time::{Duration, Instant};

use crate::support::function::Function;
use crate::support::runtime_api::{Outcome, RuntimeApi};
use crate::support::setup::Setup;
use serde_json::{json, Value};
use wechat_emulator::{Fault, DEMO_APPID};

fn dead_address() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

#[test]
fn wechat_refusals_are_wx_api_errors_with_errcode_and_errmsg_verbatim() {
    let s = Setup::new(&[]);
    let (kind, code, msg) = s.fails(json!({"action":"unbind","pluginAppid":"wxpluginpay00001"}));
    assert_eq!((kind.as_str(), code), ("WxApiError", 89243));
    assert!(
        msg.starts_with("openapi.pluginManager.unbindPlugin:fail applying plugin can not be unbound rid: "),
        "{msg}"
    );
    let (kind, code, _) = s.fails(json!({"action":"unbind","pluginAppid":"wxpluginshop0001"}));
    assert_eq!((kind.as_str(), code), ("WxApiError", 89244));
    let (_, code, _) = s.fails(json!({"action":"apply","pluginAppid":"wxpluginchat0001"}));
    assert_eq!(code, 89237);
    let (_, code, _) = s.fails(json!({"action":"dev_agree","appid":"wxbuyer000000002"}));
    assert_eq!(code, 89240);
}

#[test]
fn bad_events_are_invalid_event_errors_and_never_reach_wechat() {
    let s = Setup::new(&[]);
    let bad = [
        (json!({"action":"unbind","pluginAppId":"wxp"}), "unknown field pluginAppId; did you mean pluginAppid?"),
        (json!({"action":"unbind"}), "missing field pluginAppid"),
        (json!({"action":"unbind","pluginAppid":""}), "field pluginAppid must be a non-empty string"),
        (json!({"action":"dev_apply_list","page":"1","num":10}), "field page must be a positive integer"),
        (json!({"action":"fly"}), "unknown action \"fly\""),
        (json!({"pluginAppid":"wxp"}), "missing field action"),
        (json!([1, 2]), "the event must be a JSON object"),
        (json!("list"), "the event must be a JSON object"),
        (json!({"action":"list","page":1}), "field page is not a parameter of action list"),
    ];
    for (event, detail) in bad {
        let (kind, code, msg) = s.fails(event.clone());
        assert_eq!((kind.as_str(), code), ("InvalidEvent", -501007), "{event}");
        assert!(msg.contains(detail), "{event}: {msg}");
    }
    assert!(s.emu.requests().is_empty(), "no call to WeChat, not even for a token: {:?}", s.emu.requests());
}

#[test]
fn token_refusals_are_token_errors_and_are_not_cached() {
    let s = Setup::new(&[("WX_SECRET", "not-the-secret")]);
    let (kind, code, msg) = s.fails(json!({"action":"list"}));
    assert_eq!((kind.as_str(), code), ("TokenError", 40125));
    assert!(
        msg.starts_with("openapi.pluginManager.getPluginList:fail cannot get access_token: invalid appsecret rid: "),
        "{msg}"
    );
    let (_, code, _) = s.fails(json!({"action":"list"}));
    assert_eq!(code, 40125);
    assert_eq!(s.emu.token_calls(), 2, "a failed fetch is not cached");
    assert_eq!(s.plugin_calls(), 0);

    let s = Setup::new(&[]);
    s.emu.edit_world(|w| w.accounts.iter_mut().find(|a| a.appid == DEMO_APPID).unwrap().ip_whitelist_blocks = true);
    let (kind, code, _) = s.fails(json!({"action":"list"}));
    assert_eq!((kind.as_str(), code), ("TokenError", 40164));
    s.emu.edit_world(|w| w.accounts.iter_mut().find(|a| a.appid == DEMO_APPID).unwrap().ip_whitelist_blocks = false);
    s.emu.script("/cgi-bin/stable_token", Fault::Errcode { errcode: -1, errmsg: None }, 1);
    let (kind, code, _) = s.fails(json!({"action":"list"}));
    assert_eq!((kind.as_str(), code), ("TokenError", -1));
    s.succeeds(json!({"action":"list"}));
}

#[test]
fn broken_answers_are_upstream_errors_with_wx_server_sdk_codes() {
    let s = Setup::new(&[]);
    s.succeeds(json!({"action":"list"}));
    let cases = [
        (
            Fault::NonJson { body: Some("<html>busy</html>".into()) },
            -601001,
            "response body is invalid json: <html>busy</html>",
        ),
        (Fault::Status { status: 502 }, -501001, "HTTP 502"),
        (Fault::Drop, -501001, "resource system error"),
    ];
    for (fault, want, detail) in cases {
        s.emu.script("/wxa/plugin", fault.clone(), 1);
        let before = s.plugin_calls();
        let (kind, code, msg) = s.fails(json!({"action":"unbind","pluginAppid":"wxpluginchat0001"}));
        assert_eq!((kind.as_str(), code), ("UpstreamError", want), "{fault:?}: {msg}");
        assert!(msg.starts_with("openapi.pluginManager.unbindPlugin:fail ") && msg.contains(detail), "{msg}");
        assert_eq!(s.plugin_calls() - before, 1, "a change is not sent twice after {fault:?}");
    }
    // JSON labelled text/plain is still JSON.
    s.emu.script("/wxa/plugin", Fault::TextPlain, 1);
    assert_eq!(s.succeeds(json!({"action":"list"}))["errCode"], 0);
}

#[test]
fn an_upstream_that_hangs_is_cut_off_before_the_deadline() {
    let s = Setup::new(&[]);
    s.succeeds(json!({"action":"list"}));
    s.emu.script("/wxa/plugin", Fault::Delay { ms: 20_000 }, 1);
    let limit = Duration::from_secs(2);
    let started = Instant::now();
    let (kind, message) = s.api.invoke(&json!({"action":"unbind","pluginAppid":"wxpluginchat0001"}), limit).error();
    let took = started.elapsed();
    assert_eq!(kind, "UpstreamError");
    let body: Value = serde_json::from_str(&message).unwrap();
    assert_eq!(body["errCode"], -501002);
    assert!(took < limit, "answered after the deadline: {took:?}");

    // The token endpoint hanging is a token error with the same code.
    let s = Setup::new(&[]);
    s.emu.script("/cgi-bin/stable_token", Fault::Delay { ms: 20_000 }, 1);
    let started = Instant::now();
    let (kind, message) = s.api.invoke(&json!({"action":"list"}), limit).error();
    assert!(started.elapsed() < limit);
    assert_eq!(kind, "TokenError");
    assert_eq!(serde_json::from_str::<Value>(&message).unwrap()["errCode"], -501002);
}

#[test]
fn a_dead_upstream_fails_fast_with_network_codes() {
    let dead = dead_address();
    let api = RuntimeApi::start();
    let _f = Function::spawn(&api, &[("WX_APPID", DEMO_APPID), ("WX_SECRET", "x"), ("WX_API_BASE", &dead)]);
    let started = Instant::now();
    let (kind, message) = api.invoke(&json!({"action":"list"}), Duration::from_secs(5)).error();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(kind, "TokenError");
    assert_eq!(serde_json::from_str::<Value>(&message).unwrap()["errCode"], -501001);

    let api = RuntimeApi::start();
    let _f = Function::spawn(&api, &[("WX_ACCESS_TOKEN", "81_fixedtokenfortests"), ("WX_API_BASE", &dead)]);
    let (kind, message) = api.invoke(&json!({"action":"list"}), Duration::from_secs(5)).error();
    assert_eq!(kind, "UpstreamError");
    let body: Value = serde_json::from_str(&message).unwrap();
    assert_eq!(body["errCode"], -501001);
    assert!(body["errMsg"].as_str().unwrap().contains("resource system error"), "{body}");
}

#[test]
fn missing_configuration_fails_the_cold_start_clearly() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "WX_APPID and WX_SECRET are not set"),
        (&[("WX_APPID", DEMO_APPID)], "WX_SECRET is not set"),
        (&[("WX_APPID", DEMO_APPID), ("WX_SECRET", "s"), ("WX_TOKEN_ENDPOINT", "fast")], "must be stable or classic"),
        (&[("WX_APPID", DEMO_APPID), ("WX_SECRET", "s"), ("WX_API_BASE", "api.weixin.qq.com")], "WX_API_BASE"),
    ];
    for (env, why) in cases {
        let api = RuntimeApi::start();
        let mut f = Function::spawn(&api, env);
        let status = f.wait_exit(Duration::from_secs(10)).expect("the cold start ends");
        assert!(!status.success());
        let reported = api.init_error().expect("the init error is reported to the Runtime API");
        assert_eq!(reported["errorType"], "ConfigError");
        let message: Value = serde_json::from_str(reported["errorMessage"].as_str().unwrap()).unwrap();
        assert!(message["errMsg"].as_str().unwrap().contains(why), "{message}");
        assert!(f.output().contains(why), "the log says why too: {}", f.output());
        assert_eq!(api.polls(), 0, "no invocation is taken");
    }
    // And an invocation queued for such a function is never answered by it.
    let api = RuntimeApi::start();
    let _f = Function::spawn(&api, &[]);
    assert_eq!(api.invoke(&json!({"action":"list"}), Duration::from_millis(200)), Outcome::NoAnswer);
}
