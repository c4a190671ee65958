//! `wxpm platform` as an operator runs it: the real CLI with the function's settings, a real Redis, the emulator.
//!
//! Moved from the function's `tests/platform_cli.rs` when `wxpm` became a crate of its own; names unchanged.

use std::process::Command;

use serde_json::Value;
use testkit::redis::RedisServer;
use wechat_emulator::{
    Emulator, PlatformPush, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID, DEMO_COMPONENT_SECRET, DEMO_COMPONENT_TOKEN,
};
use wechat_wire::crypt::MsgCrypt;
use wx_plugin_manager::platform::push::{self, Push, Signed};

const BUYER: &str = "wxbuyer000000002";

/// Runs `wxpm platform <args>` with only the given environment; gives success, stdout as JSON, and stderr.
fn wxpm(args: &[&str], env: &[(&str, &str)]) -> (bool, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wxpm"))
        .arg("platform")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}\n{stderr}"));
    (out.status.success(), json, stderr)
}

/// The authorisation code inside an `authorized` push, read as the function reads it.
fn code_in(push: &PlatformPush) -> String {
    let crypt = MsgCrypt::new(DEMO_COMPONENT_TOKEN, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID).unwrap();
    let (s, t, n) = (push.query_param("msg_signature"), push.query_param("timestamp"), push.query_param("nonce"));
    let signed = Signed { msg_signature: &s.unwrap(), timestamp: &t.unwrap(), nonce: &n.unwrap() };
    match push::open(&[&crypt], &signed, &push.body).unwrap() {
        Push::Authorized { code, .. } => code,
        other => panic!("not an authorisation: {other:?}"),
    }
}

#[test]
fn wxpm_platform_exchanges_a_code_lists_the_authorised_and_restarts_the_pushes() {
    let redis = RedisServer::start();
    let emu = Emulator::start().unwrap();
    let url = redis.url();
    let env = [
        ("WX_COMPONENT_APPID", DEMO_COMPONENT_APPID),
        ("WX_COMPONENT_SECRET", DEMO_COMPONENT_SECRET),
        ("WX_COMPONENT_TOKEN", DEMO_COMPONENT_TOKEN),
        ("WX_COMPONENT_AES_KEY", DEMO_COMPONENT_AES_KEY),
        ("WX_API_BASE", emu.base_url()),
        ("WX_TOKEN_CACHE", &url),
    ];
    // The ticket as the function would have stored it from WeChat's push.
    emu.push_ticket(DEMO_COMPONENT_APPID);
    let ticket = emu.current_ticket(DEMO_COMPONENT_APPID).unwrap();
    redis.cli(&["SET", &format!("wx:platform:{DEMO_COMPONENT_APPID}:ticket"), &format!("{}|{ticket}", emu.now())]);

    let code = code_in(&emu.authorize(DEMO_COMPONENT_APPID, BUYER, &[18, 40]));
    let (ok, out, stderr) = wxpm(&["exchange", &code], &env);
    assert!(ok, "{out}\n{stderr}");
    assert_eq!(out, serde_json::json!({"authorizerAppid": BUYER, "pluginPermission": true}));
    let refresh = emu.refresh_token(DEMO_COMPONENT_APPID, BUYER).unwrap();
    assert_eq!(redis.cli(&["GET", &format!("wx:platform:{DEMO_COMPONENT_APPID}:refresh:{BUYER}")]), refresh);
    assert!(!stderr.contains(&refresh) && !stderr.contains(DEMO_COMPONENT_SECRET), "{stderr}");

    // A code is good once.
    let (ok, out, _) = wxpm(&["exchange", &code], &env);
    assert!(!ok);
    assert_eq!(out["errorType"], "TokenError", "{out}");
    assert!(out["errorMessage"].as_str().unwrap().contains("61009"), "{out}");

    let (ok, out, _) = wxpm(&["authorized"], &env);
    assert!(ok);
    assert_eq!(out, serde_json::json!({"authorized": [BUYER]}));

    let (ok, out, _) = wxpm(&["start-push"], &env);
    assert!(ok, "{out}");
    assert_eq!(out["errCode"], 0);
    assert_eq!(emu.count("/cgi-bin/component/api_start_push_ticket"), 1);
}

#[test]
fn wxpm_platform_without_platform_settings_is_a_config_error() {
    let (ok, out, stderr) = wxpm(&["authorized"], &[("WX_APPID", "wxdemo0000000001"), ("WX_SECRET", "s")]);
    assert!(!ok);
    assert_eq!(out["errorType"], "ConfigError", "{out}");
    assert!(out["errorMessage"].as_str().unwrap().contains("WX_COMPONENT_APPID"), "{out}");
    assert!(stderr.contains("WX_TOKEN_CACHE is memory"), "{stderr}");
}
