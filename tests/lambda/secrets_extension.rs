//! The app secret read at cold start from Secrets Manager or SSM through the Parameters and Secrets extension's HTTP
//! API (a stand-in on loopback), by the real Lambda binary.

use std::time::Duration;

use crate::support::extension::Extension;
use crate::support::function::Function;
use crate::support::runtime_api::RuntimeApi;
use crate::support::setup::TIMEOUT;
use serde_json::{json, Value};
use wechat_emulator::{Emulator, DEMO_APPID, DEMO_SECRET};

const SESSION: &str = "IQoJb3JpZ2luX2VjEXAMPLE-session-token";
const ARN: &str = "arn:aws:secretsmanager:ap-east-1:123456789012:secret:wx-plugin-manager-AbCdEf";
const PARAMETER: &str = "/wx-plugin-manager/app-secret";

fn extension() -> Extension {
    let json_secret = json!({ "secret": DEMO_SECRET }).to_string();
    Extension::start(SESSION, &[(ARN, &json_secret)], &[(PARAMETER, DEMO_SECRET)])
}

fn spawn(emu: &Emulator, ext: &Extension, api: &RuntimeApi, extra: &[(&str, &str)]) -> Function {
    let port = ext.port.to_string();
    let mut env = vec![
        ("WX_APPID", DEMO_APPID),
        ("WX_API_BASE", emu.base_url()),
        ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", port.as_str()),
        ("AWS_SESSION_TOKEN", SESSION),
    ];
    env.extend_from_slice(extra);
    Function::spawn(api, &env)
}

/// The cold start's ConfigError message, after the process has exited.
fn cold_start_failure(api: &RuntimeApi, f: &mut Function) -> String {
    let status = f.wait_exit(Duration::from_secs(15)).expect("the cold start ends");
    assert!(!status.success());
    let reported = api.init_error().expect("the init error is reported");
    assert_eq!(reported["errorType"], "ConfigError");
    let message: Value = serde_json::from_str(reported["errorMessage"].as_str().unwrap()).unwrap();
    message["errMsg"].as_str().unwrap().to_owned()
}

#[test]
fn the_secret_comes_from_secrets_manager_once_at_cold_start() {
    let (emu, ext, api) = (Emulator::start().unwrap(), extension(), RuntimeApi::start());
    let f = spawn(&emu, &ext, &api, &[("WX_SECRET_ARN", ARN)]);
    for _ in 0..3 {
        assert_eq!(api.invoke(&json!({"action":"list"}), TIMEOUT).response()["errCode"], 0);
    }
    assert_eq!(ext.requests(), 1, "read once, at cold start");
    assert!(!f.output().contains(DEMO_SECRET));
}

#[test]
fn the_secret_comes_from_an_ssm_parameter() {
    let (emu, ext, api) = (Emulator::start().unwrap(), extension(), RuntimeApi::start());
    let _f = spawn(&emu, &ext, &api, &[("WX_SECRET_PARAMETER", PARAMETER)]);
    assert_eq!(api.invoke(&json!({"action":"list"}), TIMEOUT).response()["errCode"], 0);
    assert_eq!(ext.requests(), 1);
}

#[test]
fn a_wrong_session_token_fails_the_cold_start_clearly() {
    let (emu, ext, api) = (Emulator::start().unwrap(), extension(), RuntimeApi::start());
    let mut f = spawn(&emu, &ext, &api, &[("WX_SECRET_ARN", ARN), ("AWS_SESSION_TOKEN", "not-the-session-token")]);
    let why = cold_start_failure(&api, &mut f);
    assert!(why.contains("WX_SECRET_ARN") && why.contains("HTTP 401"), "{why}");
    assert!(emu.requests().is_empty(), "nothing reached WeChat");
}

#[test]
fn a_missing_secret_or_parameter_fails_the_cold_start_clearly() {
    let (emu, ext) = (Emulator::start().unwrap(), extension());
    let api = RuntimeApi::start();
    let mut f = spawn(&emu, &ext, &api, &[("WX_SECRET_ARN", "arn:aws:secretsmanager:ap-east-1:1:secret:gone")]);
    let why = cold_start_failure(&api, &mut f);
    assert!(why.contains("WX_SECRET_ARN") && why.contains("HTTP 400") && why.contains("can't find"), "{why}");
    let api = RuntimeApi::start();
    let mut f = spawn(&emu, &ext, &api, &[("WX_SECRET_PARAMETER", "/nope")]);
    let why = cold_start_failure(&api, &mut f);
    assert!(why.contains("WX_SECRET_PARAMETER") && why.contains("ParameterNotFound"), "{why}");
}

#[test]
fn no_extension_or_no_session_token_fails_the_cold_start_within_seconds() {
    let emu = Emulator::start().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let api = RuntimeApi::start();
    let env = [
        ("WX_APPID", DEMO_APPID),
        ("WX_API_BASE", emu.base_url()),
        ("WX_SECRET_ARN", ARN),
        ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", closed.as_str()),
        ("AWS_SESSION_TOKEN", SESSION),
    ];
    let started = std::time::Instant::now();
    let mut f = Function::spawn(&api, &env);
    let why = cold_start_failure(&api, &mut f);
    assert!(why.contains("cannot reach the Parameters and Secrets extension"), "{why}");
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());

    let api = RuntimeApi::start();
    let mut f = Function::spawn(&api, &env[..4]);
    assert!(cold_start_failure(&api, &mut f).contains("AWS_SESSION_TOKEN is not set"));
}

#[test]
fn a_throttled_extension_is_tried_again_and_an_oversized_answer_refused() {
    let emu = Emulator::start().unwrap();
    let json_secret = json!({ "secret": DEMO_SECRET }).to_string();
    let throttled = Extension::start_throttled(3, SESSION, &[(ARN, &json_secret)], &[]);
    let api = RuntimeApi::start();
    let _f = spawn(&emu, &throttled, &api, &[("WX_SECRET_ARN", ARN)]);
    assert_eq!(api.invoke(&json!({"action":"list"}), TIMEOUT).response()["errCode"], 0);
    assert_eq!(throttled.requests(), 4, "three 503s, then the secret");

    let huge = "x".repeat(100 * 1024);
    let oversized = Extension::start(SESSION, &[(ARN, &huge)], &[]);
    let api = RuntimeApi::start();
    let mut f = spawn(&emu, &oversized, &api, &[("WX_SECRET_ARN", ARN)]);
    assert!(cold_start_failure(&api, &mut f).contains("over 64 KiB"));
}

#[test]
fn the_api_security_keys_come_from_one_stored_secret_beside_the_app_secret() {
    const KEYS_ARN: &str = "arn:aws:secretsmanager:ap-east-1:123456789012:secret:wx-api-security-XyZ123";
    const KEYS_PARAMETER: &str = "/wx-plugin-manager/api-security";
    let emu = Emulator::start().unwrap();
    emu.set_api_security_enforcement(DEMO_APPID, "required");
    // The emulator's key file is the secret's format: a JSON object of the WX_API_* names.
    let keys: serde_json::Map<String, Value> =
        emu.api_security_env(DEMO_APPID).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let keys = Value::Object(keys).to_string();
    let json_secret = json!({ "secret": DEMO_SECRET }).to_string();
    let ext = Extension::start(SESSION, &[(ARN, &json_secret), (KEYS_ARN, &keys)], &[(KEYS_PARAMETER, &keys)]);
    for source in [("WX_API_SECURITY_SECRET_ARN", KEYS_ARN), ("WX_API_SECURITY_SECRET_PARAMETER", KEYS_PARAMETER)] {
        let api = RuntimeApi::start();
        let before = ext.requests();
        let f = spawn(&emu, &ext, &api, &[("WX_SECRET_ARN", ARN), ("WX_API_SECURITY", "on"), source]);
        for _ in 0..2 {
            let result = api.invoke(&json!({"action":"list"}), TIMEOUT).response();
            assert_eq!(result["errCode"], 0, "{source:?}: {result}");
        }
        assert_eq!(ext.requests() - before, 2, "the app secret and the keys, each once at cold start");
        let sym_key = emu.api_security_env(DEMO_APPID).into_iter().find(|(k, _)| k == "WX_API_SYM_KEY").unwrap().1;
        assert!(!f.output().contains(&sym_key) && !f.output().contains(DEMO_SECRET));
    }
}
