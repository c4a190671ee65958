//! The token rules through the real Lambda binary: reuse across invocations, refresh and one retry on each token
//! code, no loop, one fetch for many concurrent invocations, the classic endpoint, a fixed token, and the retry
//! rules for `-1`.

use std::time::Duration;

use crate::support::function::Function;
use crate::support::runtime_api::RuntimeApi;
use crate::support::setup::{Setup, TIMEOUT};
use serde_json::json;
use wechat_emulator::{Fault, Status, DEMO_APPID};

fn list() -> serde_json::Value {
    json!({"action":"list"})
}

#[test]
fn one_token_serves_many_invocations() {
    let s = Setup::new(&[]);
    for _ in 0..5 {
        s.succeeds(list());
    }
    assert_eq!(s.emu.token_calls(), 1);
    assert_eq!(s.plugin_calls(), 5);
    let tokens: Vec<_> = s.emu.requests().iter().filter_map(|r| r.query_param("access_token")).collect();
    assert!(tokens.windows(2).all(|w| w[0] == w[1]), "the same token every time");
}

#[test]
fn each_token_code_refreshes_and_retries_once() {
    for code in [40001, 40014, 42001] {
        let s = Setup::new(&[]);
        s.succeeds(list());
        s.emu.script("/wxa/plugin", Fault::Errcode { errcode: code, errmsg: None }, 1);
        let result = s.succeeds(json!({"action":"unbind","pluginAppid":"wxpluginchat0001"}));
        assert_eq!(result["errCode"], 0, "after {code}");
        assert_eq!(s.emu.token_calls(), 2, "one refetch after {code}");
        assert_eq!(s.plugin_calls(), 3, "one retry after {code}");
        assert_eq!(s.emu.status("wxpluginchat0001", DEMO_APPID), None);
    }
}

#[test]
fn a_token_the_emulator_invalidated_is_replaced_and_the_call_retried() {
    let s = Setup::new(&[]);
    s.succeeds(list());
    assert_eq!(s.emu.invalidate_tokens(DEMO_APPID), 1);
    s.succeeds(list());
    assert_eq!(s.emu.token_calls(), 2);
    let used: Vec<_> = s
        .emu
        .requests()
        .iter()
        .filter(|r| r.path == "/wxa/plugin")
        .filter_map(|r| r.query_param("access_token"))
        .collect();
    assert_eq!(used.len(), 3);
    assert_eq!(used[0], used[1], "the stale one was tried once");
    assert_ne!(used[1], used[2]);
}

#[test]
fn a_persistent_40001_gives_up_after_one_retry() {
    let s = Setup::new(&[]);
    s.succeeds(list());
    s.emu.script("/wxa/plugin", Fault::Errcode { errcode: 40001, errmsg: None }, 10);
    let before = s.plugin_calls();
    let (kind, code, msg) = s.fails(list());
    assert_eq!((kind.as_str(), code), ("WxApiError", 40001));
    assert!(msg.starts_with("openapi.pluginManager.getPluginList:fail invalid credential"), "{msg}");
    assert_eq!(s.plugin_calls() - before, 2);
    assert_eq!(s.emu.token_calls(), 2);
}

#[test]
fn many_concurrent_invocations_share_one_token_fetch() {
    let s = Setup::new(&[("AWS_LAMBDA_MAX_CONCURRENCY", "8")]);
    assert!(s.api.wait_for_polls(8, Duration::from_secs(10)), "8 pollers");
    s.emu.script("/cgi-bin/stable_token", Fault::Delay { ms: 300 }, 1);
    let outcomes = s.api.invoke_many(&vec![list(); 24], TIMEOUT);
    for outcome in outcomes {
        assert_eq!(outcome.response()["errCode"], 0);
    }
    assert_eq!(s.emu.token_calls(), 1);

    // An invalidation storm: every in-flight call meets 40001 with the same token; one refetch serves them all.
    s.emu.invalidate_tokens(DEMO_APPID);
    let outcomes = s.api.invoke_many(&vec![list(); 16], TIMEOUT);
    for outcome in outcomes {
        assert_eq!(outcome.response()["errCode"], 0);
    }
    assert_eq!(s.emu.token_calls(), 2);
}

#[test]
fn the_classic_endpoint_is_used_when_asked_and_its_token_reused() {
    let s = Setup::new(&[("WX_TOKEN_ENDPOINT", "classic")]);
    for _ in 0..3 {
        s.succeeds(list());
    }
    assert_eq!(s.emu.count("/cgi-bin/token"), 1);
    assert_eq!(s.emu.count("/cgi-bin/stable_token"), 0);
}

#[test]
fn a_fixed_token_is_used_as_it_is_and_never_refreshed() {
    let s = Setup::new(&[]);
    let token = s.emu.authorizer_token(DEMO_APPID);
    let api = RuntimeApi::start();
    let _f = Function::spawn(&api, &[("WX_ACCESS_TOKEN", &token), ("WX_API_BASE", s.emu.base_url())]);
    assert_eq!(api.invoke(&list(), TIMEOUT).response()["errCode"], 0);
    s.emu.invalidate_tokens(DEMO_APPID);
    let (kind, message) = api.invoke(&list(), TIMEOUT).error();
    assert_eq!(kind, "WxApiError");
    assert!(message.contains("\"errCode\":40001"), "{message}");
    assert_eq!(s.emu.token_calls(), 0);
    assert_eq!(s.plugin_calls(), 2);
}

#[test]
fn busy_reads_are_retried_once_and_busy_changes_never() {
    let s = Setup::new(&[]);
    s.succeeds(list());
    s.emu.script("/wxa/plugin", Fault::Errcode { errcode: -1, errmsg: None }, 1);
    assert_eq!(s.succeeds(list())["errCode"], 0);
    assert_eq!(s.plugin_calls(), 3);

    s.emu.script("/wxa/plugin", Fault::Errcode { errcode: -1, errmsg: None }, 2);
    let (kind, code, _) = s.fails(list());
    assert_eq!((kind.as_str(), code), ("WxApiError", -1));
    assert_eq!(s.plugin_calls(), 5, "a read is retried once, not twice");

    s.emu.script("/wxa/plugin", Fault::Errcode { errcode: -1, errmsg: None }, 1);
    let (kind, code, _) = s.fails(json!({"action":"unbind","pluginAppid":"wxpluginchat0001"}));
    assert_eq!((kind.as_str(), code), ("WxApiError", -1));
    assert_eq!(s.plugin_calls(), 6, "a change is not resent after -1");
    assert_eq!(s.emu.status("wxpluginchat0001", DEMO_APPID), Some(Status::Approved));

    s.emu.script("/wxa/devplugin", Fault::Errcode { errcode: -1, errmsg: None }, 1);
    let (_, code, _) = s.fails(json!({"action":"dev_agree","appid":"wxbuyer000000001"}));
    assert_eq!(code, -1);
    assert_eq!(s.emu.count("/wxa/devplugin"), 1);
    assert_eq!(s.emu.status("wxplugin00000001", "wxbuyer000000001"), Some(Status::Pending));

    s.emu.script("/wxa/devplugin", Fault::Errcode { errcode: -1, errmsg: None }, 1);
    assert_eq!(s.succeeds(json!({"action":"dev_apply_list","page":1,"num":5}))["errCode"], 0);
    assert_eq!(s.emu.count("/wxa/devplugin"), 3, "the other read is retried once too");
}

/// Every exchange runs to the deadline, so a timeout leaves no time to resend: this shows the answer comes in time
/// and the change went out once.
#[test]
fn a_change_that_times_out_is_answered_at_the_deadline_and_sent_once() {
    let s = Setup::new(&[]);
    s.succeeds(list());
    s.emu.script("/wxa/plugin", Fault::Delay { ms: 3_000 }, 1);
    let (kind, message) =
        s.api.invoke(&json!({"action":"unbind","pluginAppid":"wxpluginchat0001"}), Duration::from_secs(1)).error();
    assert_eq!(kind, "UpstreamError");
    assert!(message.contains("-501002"));
    assert_eq!(s.plugin_calls(), 2);
}

#[test]
fn waiting_for_another_invocations_token_fetch_ends_before_the_deadline() {
    let s = Setup::new(&[("AWS_LAMBDA_MAX_CONCURRENCY", "2")]);
    assert!(s.api.wait_for_polls(2, Duration::from_secs(10)));
    s.emu.script("/cgi-bin/stable_token", Fault::Delay { ms: 4_000 }, 1);
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| s.api.invoke(&list(), Duration::from_secs(10)));
        // Let the first invocation take the fetch.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while s.emu.token_calls() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let started = std::time::Instant::now();
        let (kind, message) = s.api.invoke(&list(), Duration::from_secs(1)).error();
        assert!(started.elapsed() < Duration::from_secs(1), "answered after its deadline: {:?}", started.elapsed());
        assert_eq!(kind, "TokenError");
        assert!(message.contains("-501002"), "{message}");
        assert_eq!(slow.join().unwrap().response()["errCode"], 0);
    });
    assert_eq!(s.emu.token_calls(), 1);
}
