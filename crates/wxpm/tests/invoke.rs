//! `wxpm invoke` with secrets about: API security's keys spoken to an emulator that requires them, and nothing secret
//! in what it prints. Moved from the function's suites (`api_security.rs` and `function_secrets.rs`), unchanged.

use std::process::{Command, Stdio};

use serde_json::{json, Value};
use testkit::leaks::{assert_clean, long_token_like_run};
use wechat_emulator::{Emulator, DEMO_APPID, DEMO_SECRET};

#[test]
fn wxpm_invoke_speaks_the_layer_to_an_emulator_that_requires_it() {
    let emu = Emulator::start().unwrap();
    emu.set_api_security_enforcement(DEMO_APPID, "required");
    let run = |env: &[(String, String)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wxpm"))
            .args(["invoke", "--api-base", emu.base_url(), "events/list.json"])
            .current_dir(crate::ROOT)
            .env_remove("RUST_LOG")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap_or_else(|_| json!({"stderr": String::from_utf8_lossy(&out.stderr)}))
    };
    let secured = run(&emu.api_security_env(DEMO_APPID));
    assert_eq!(secured["errCode"], 0, "{secured}");
    assert!(secured["pluginList"].is_array());
    // Without the keys, WeChat's plain refusal, as the error it is.
    let plain = run(&[]);
    assert_eq!(plain["errorType"], "WxApiError", "{plain}");
    let thrown: Value = serde_json::from_str(plain["errorMessage"].as_str().unwrap()).unwrap();
    assert_eq!(thrown["errCode"], 40233, "{plain}");
}

#[test]
fn no_secret_in_wxpm_invoke_output() {
    let mut seen = String::new();
    for event in ["list", "invalid", "update"] {
        let out = Command::new(env!("CARGO_BIN_EXE_wxpm"))
            .args(["invoke", &format!("{}/events/{event}.json", crate::ROOT)])
            .env("RUST_LOG", "trace")
            .env_remove("WX_APPID")
            .env_remove("WX_ACCESS_TOKEN")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        seen.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(seen.contains("embedded WeChat emulator"));
    // The embedded emulator's tokens are not visible from here; they all start like this and carry 126 more
    // characters, so any of them would show as a long run after the prefix.
    let long_token_like = long_token_like_run(&seen);
    assert!(long_token_like.is_none(), "a token-like string in wxpm output: {long_token_like:?}");
    assert_clean(&seen, &[DEMO_SECRET.to_owned()]);
}
