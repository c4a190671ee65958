//! No secret in any output: the app secret, every token the emulator issued and a fixed token are searched for in
//! everything the function printed (at RUST_LOG=trace) and everything it answered, across successes, refreshes and
//! every kind of failure, on both token endpoints.

use std::time::Duration;

use crate::support::function::Function;
use crate::support::runtime_api::RuntimeApi;
use crate::support::setup::{Setup, TIMEOUT};
use serde_json::json;
use testkit::leaks::assert_clean;
use wechat_emulator::{Fault, DEMO_APPID, DEMO_SECRET};

const FIXED_TOKEN: &str = "81_fixed-token-that-must-never-be-printed";

/// Runs a mix of successes and failures; gives everything printed and answered.
fn exercise(s: &Setup, token_path: &str) -> String {
    let mut seen = String::new();
    let mut invoke = |event: serde_json::Value, limit: Duration| {
        seen.push_str(&format!("{:?}\n", s.api.invoke(&event, limit)));
    };
    invoke(json!({"action":"list"}), TIMEOUT);
    s.emu.invalidate_tokens(DEMO_APPID);
    invoke(json!({"action":"list"}), TIMEOUT);
    s.emu.script("/wxa/plugin", Fault::Errcode { errcode: 40001, errmsg: None }, 3);
    invoke(json!({"action":"list"}), TIMEOUT);
    invoke(json!({"action":"unbind","pluginAppId":"x"}), TIMEOUT);
    invoke(json!({"action":"unbind","pluginAppid":"wxpluginpay00001"}), TIMEOUT);
    for fault in [Fault::NonJson { body: None }, Fault::Status { status: 500 }, Fault::Drop] {
        s.emu.script("/wxa/plugin", fault, 1);
        invoke(json!({"action":"list"}), TIMEOUT);
    }
    s.emu.script("/wxa/plugin", Fault::Delay { ms: 3_000 }, 1);
    invoke(json!({"action":"list"}), Duration::from_secs(1));
    // Token-endpoint failures: the classic endpoint carries the secret in its URL.
    for fault in [Fault::Delay { ms: 3_000 }, Fault::Drop, Fault::Status { status: 503 }, Fault::NonJson { body: None }]
    {
        s.emu.invalidate_tokens(DEMO_APPID);
        s.emu.script(token_path, fault, 2);
        invoke(json!({"action":"list"}), Duration::from_secs(1));
    }
    seen.push_str(&s.function.output());
    seen
}

#[test]
fn no_secret_or_token_in_output_with_the_stable_endpoint() {
    let s = Setup::new(&[("RUST_LOG", "trace")]);
    let seen = exercise(&s, "/cgi-bin/stable_token");
    let mut secrets = s.emu.issued_tokens();
    assert!(secrets.len() >= 2, "the run issued more than one token");
    secrets.push(DEMO_SECRET.to_owned());
    assert_clean(&seen, &secrets);
    assert!(seen.contains("\"level\":\"DEBUG\"") || seen.contains("\"level\":\"TRACE\""), "trace logging was on");
}

#[test]
fn no_secret_or_token_in_output_with_the_classic_endpoint() {
    let s = Setup::new(&[("RUST_LOG", "trace"), ("WX_TOKEN_ENDPOINT", "classic")]);
    let seen = exercise(&s, "/cgi-bin/token");
    let mut secrets = s.emu.issued_tokens();
    secrets.push(DEMO_SECRET.to_owned());
    assert_clean(&seen, &secrets);
}

#[test]
fn no_fixed_token_in_output_when_the_upstream_fails() {
    let s = Setup::new(&[]);
    let api = RuntimeApi::start();
    let f = Function::spawn(
        &api,
        &[("WX_ACCESS_TOKEN", FIXED_TOKEN), ("WX_API_BASE", s.emu.base_url()), ("RUST_LOG", "trace")],
    );
    let mut seen = String::new();
    seen.push_str(&format!("{:?}", api.invoke(&json!({"action":"list"}), TIMEOUT)));
    s.emu.script("/wxa/plugin", Fault::Delay { ms: 3_000 }, 1);
    seen.push_str(&format!("{:?}", api.invoke(&json!({"action":"list"}), Duration::from_secs(1))));
    s.emu.script("/wxa/plugin", Fault::Drop, 1);
    seen.push_str(&format!("{:?}", api.invoke(&json!({"action":"list"}), TIMEOUT)));
    seen.push_str(&f.output());
    assert_clean(&seen, &[FIXED_TOKEN.to_owned()]);

    // Configuration errors name variables, never their values.
    let api = RuntimeApi::start();
    let mut f = Function::spawn(
        &api,
        &[("WX_ACCESS_TOKEN", FIXED_TOKEN), ("WX_APPID", DEMO_APPID), ("WX_SECRET", DEMO_SECRET)],
    );
    f.wait_exit(Duration::from_secs(10)).expect("the cold start fails");
    let seen = format!("{:?}{}", api.init_error(), f.output());
    assert!(seen.contains("not both"), "{seen}");
    assert_clean(&seen, &[FIXED_TOKEN.to_owned(), DEMO_SECRET.to_owned()]);
}

#[test]
fn the_gateway_key_is_never_logged_even_at_trace() {
    let key = "demo-gateway-key-0123456789";
    let s = Setup::new(&[("RUST_LOG", "trace"), ("GATEWAY_API_KEY", key)]);
    let path = format!("{}/events/alb-bearer.json", env!("CARGO_MANIFEST_DIR"));
    let event: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let answer = s.api.invoke(&event, TIMEOUT).response();
    assert_eq!(answer["statusCode"], 200);
    let mut wrong = event.clone();
    wrong["headers"]["authorization"] = json!("Bearer demo-gateway-key-WRONG-0123456789");
    assert_eq!(s.api.invoke(&wrong, TIMEOUT).response()["statusCode"], 401);
    let output = s.function.output();
    assert!(output.contains("\"level\":\"DEBUG\"") || output.contains("\"level\":\"TRACE\""));
    assert_clean(&output, &[key.to_owned(), "demo-gateway-key-WRONG-0123456789".to_owned()]);
}

#[test]
fn a_redirect_is_not_followed_so_the_secret_stays_put() {
    let s = Setup::new(&[]);
    let elsewhere = format!("{}/elsewhere", s.emu.base_url());
    s.emu.script("/cgi-bin/stable_token", Fault::Redirect { status: 307, location: elsewhere }, 1);
    let (kind, code, msg) = s.fails(json!({"action":"list"}));
    assert_eq!((kind.as_str(), code), ("TokenError", -501001), "{msg}");
    assert!(msg.contains("HTTP 307"), "{msg}");
    assert_eq!(s.emu.count("/elsewhere"), 0, "the secret was re-posted to the redirect's target");
}

#[test]
fn a_broken_token_answer_is_not_quoted() {
    let s = Setup::new(&[]);
    let lookalike = "81_a-token-inside-a-proxy-wrapper-that-must-not-be-echoed";
    s.emu.script("/cgi-bin/stable_token", Fault::NonJson { body: Some(format!("[\"{lookalike}\"]")) }, 1);
    let (kind, code, msg) = s.fails(json!({"action":"list"}));
    assert_eq!((kind.as_str(), code), ("TokenError", -601001));
    assert!(msg.contains("withheld"), "{msg}");
    assert_clean(&format!("{msg}{}", s.function.output()), &[lookalike.to_owned()]);
}
