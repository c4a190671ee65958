//! API security through the real Lambda binary against the emulator with the layer required: the same results and
//! errors as without it, every doubtful answer refused, a certificate rotation survived, the layer's own errors
//! passed on, platform mode signed as the platform, and no key material in any output.

use std::time::Duration;

use crate::support::function::Function;
use crate::support::runtime_api::{Outcome, RuntimeApi};
use crate::support::setup::{Setup, TIMEOUT};
use serde_json::{json, Value};
use wechat_emulator::{
    Emulator, Fault, PlatformPush, Status, DEMO_APPID, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID,
    DEMO_COMPONENT_SECRET, DEMO_COMPONENT_TOKEN,
};

const UNVERIFIED: i64 = -602004;

/// The environment the emulator hands out for `appid`'s API security.
fn layer_env(emu: &Emulator, appid: &str) -> Vec<(String, String)> {
    emu.api_security_env(appid)
}

/// The demo mini program's function with the layer on, against an emulator that requires it; `extra` overrides.
fn secured(extra: &[(&str, &str)]) -> Setup {
    let emu = Emulator::start().unwrap();
    emu.set_api_security_enforcement(DEMO_APPID, "required");
    let mut env = layer_env(&emu, DEMO_APPID);
    for (name, value) in extra {
        env.retain(|(n, _)| n != name);
        env.push((name.to_string(), value.to_string()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Setup::with_emulator(emu, &env)
}

/// A result or error with WeChat's `rid: …` (random per answer) cut off the message.
fn comparable(outcome: Outcome) -> Value {
    let strip = |text: &str| text.split(" rid: ").next().unwrap_or_default().to_owned();
    match outcome {
        Outcome::Response(result) => result,
        Outcome::Error { error_type, error_message } => {
            let body: Value = serde_json::from_str(&error_message).unwrap();
            json!({"errorType": error_type, "errCode": body["errCode"], "errMsg": strip(body["errMsg"].as_str().unwrap())})
        }
        Outcome::NoAnswer => panic!("no answer"),
    }
}

fn script() -> Vec<Value> {
    vec![
        json!({"action":"list"}),
        json!({"action":"apply","pluginAppid":"wxpluginshop0001","reason":"storefront"}),
        json!({"action":"apply","pluginAppid":"wxpluginshop0001"}),
        json!({"action":"unbind","pluginAppid":"wxpluginchat0001"}),
        json!({"action":"unbind","pluginAppid":"wxnotaplugin0001"}),
        json!({"action":"update","pluginAppid":"wxpluginpay00001","userVersion":"1.0.0"}),
        json!({"action":"dev_apply_list","page":1,"num":10}),
        json!({"action":"dev_agree","appid":"wxbuyer000000001"}),
        json!({"action":"dev_refuse","appid":"wxbuyer000000003","reason":"not a fit"}),
        json!({"action":"dev_delete","appid":"wxbuyer000000004"}),
        json!({"action":"list"}),
    ]
}

#[test]
fn every_action_gives_the_same_result_and_error_with_the_layer_required() {
    let plain = Setup::new(&[]);
    let layered = secured(&[]);
    for event in script() {
        let expected = comparable(plain.invoke(event.clone()));
        let got = comparable(layered.invoke(event.clone()));
        assert_eq!(got, expected, "{event}");
    }
    for (plugin, applicant) in [("wxpluginshop0001", DEMO_APPID), ("wxpluginchat0001", DEMO_APPID)] {
        assert_eq!(layered.emu.status(plugin, applicant), plain.emu.status(plugin, applicant));
    }
    assert_eq!(layered.emu.status("wxpluginshop0001", DEMO_APPID), Some(Status::Pending));
    // Every plugin call went out sealed: the emulator saw envelopes, never the plain fields.
    let calls: Vec<_> = layered.emu.requests().into_iter().filter(|r| r.path.starts_with("/wxa/")).collect();
    assert_eq!(calls.len(), script().len());
    for call in calls {
        let body = call.json_body().unwrap();
        let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["iv", "data", "authtag"], "{body}");
    }
}

#[test]
fn a_doubtful_answer_is_refused_as_upstream_error_and_never_resent() {
    let s = secured(&[]);
    let faults = [
        (Fault::TamperedEnvelope, "signature does not verify"),
        (Fault::UnknownCertificate, "not in WX_API_PLATFORM_CERTS"),
        (Fault::ForeignAppid, "is for appid"),
        (Fault::StaleTimestamp, "from this clock"),
    ];
    for (fault, why) in faults {
        let before = s.plugin_calls();
        s.emu.script("/wxa/plugin", fault.clone(), 1);
        let (kind, code, message) = s.fails(json!({"action":"apply","pluginAppid":"wxpluginshop0001"}));
        assert_eq!((kind.as_str(), code), ("UpstreamError", UNVERIFIED), "{fault:?}: {message}");
        assert!(message.starts_with("openapi.pluginManager.applyPlugin:fail API security: "), "{message}");
        assert!(message.contains(why), "{fault:?}: {message}");
        assert_eq!(s.plugin_calls(), before + 1, "{fault:?}: a change that may have happened is not resent");
    }
    // The layer itself stays healthy.
    assert_eq!(s.succeeds(json!({"action":"list"}))["errCode"], 0);
}

#[test]
fn a_rotation_is_accepted_with_one_warning() {
    let emu = Emulator::start().unwrap();
    let (old_sn, old_pem) = emu.deprecated_platform_cert();
    emu.set_api_security_rotation(DEMO_APPID, true);
    // This deployment still knows only the retiring certificate: WeChat's answers name the new one first.
    let certs = json!({ old_sn.clone(): old_pem }).to_string();
    let s = {
        emu.set_api_security_enforcement(DEMO_APPID, "required");
        let mut env = layer_env(&emu, DEMO_APPID);
        env.retain(|(n, _)| n != "WX_API_PLATFORM_CERTS");
        env.push(("WX_API_PLATFORM_CERTS".into(), certs));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Setup::with_emulator(emu, &env)
    };
    for _ in 0..3 {
        assert_eq!(s.succeeds(json!({"action":"list"}))["errCode"], 0);
    }
    let output = s.function.output();
    let warnings: Vec<&str> = output.lines().filter(|l| l.contains("retiring")).collect();
    assert_eq!(warnings.len(), 1, "one warning per container: {output}");
    assert!(warnings[0].contains("\"level\":\"WARN\"") && warnings[0].contains(&old_sn), "{}", warnings[0]);
}

#[test]
fn the_layer_s_own_plain_errors_come_back_as_wx_api_errors() {
    // Another app's private key: WeChat cannot verify the signature.
    let other_key = include_str!("../../crates/wire/tests/fixtures/api-security/official-example-app-private-key.pem");
    let s = secured(&[("WX_API_PRIVATE_KEY", other_key)]);
    let (kind, code, message) = s.fails(json!({"action":"list"}));
    assert_eq!((kind.as_str(), code), ("WxApiError", 40234), "{message}");
    assert!(message.starts_with("openapi.pluginManager.getPluginList:fail invalid signature"), "{message}");
    // Another symmetric key: WeChat cannot decrypt.
    let s = secured(&[("WX_API_SYM_KEY", "otUpngOjU+nVQaWJIC3D/yMLV17RKaP6t4Ot9tbnzLY=")]);
    assert_eq!(s.fails(json!({"action":"list"})).1, 40235);
    // The layer switched off in the function while WeChat requires it: WeChat's plain refusal, as it is.
    let plain = Setup::with_emulator(
        {
            let emu = Emulator::start().unwrap();
            emu.set_api_security_enforcement(DEMO_APPID, "required");
            emu
        },
        &[],
    );
    let (kind, code, _) = plain.fails(json!({"action":"list"}));
    assert_eq!((kind.as_str(), code), ("WxApiError", 40233));
}

#[test]
fn an_explicit_off_with_the_keys_still_set_makes_plain_calls_and_warns_once_naming_them() {
    // The rollback: WeChat's console set back to optional, the function switched off, its keys left in place.
    let emu = Emulator::start().unwrap();
    emu.set_api_security_enforcement(DEMO_APPID, "optional");
    let keys: Vec<(String, String)> = layer_env(&emu, DEMO_APPID)
        .into_iter()
        .filter(|(name, _)| name != "WX_API_SECURITY" && name != "WX_API_SIGNING_ORIGIN")
        .collect();
    let mut env: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("WX_API_SECURITY", "off"));
    let s = Setup::with_emulator(emu, &env);
    for event in [json!({"action":"list"}), json!({"action":"apply","pluginAppid":"wxpluginshop0001"})] {
        assert_eq!(s.succeeds(event.clone())["errCode"], 0, "{event}");
    }
    // The emulator accepts both kinds when optional: the bodies it saw tell which kind came.
    let calls: Vec<_> = s.emu.requests().into_iter().filter(|r| r.path.starts_with("/wxa/")).collect();
    assert_eq!(calls.len(), 2);
    for call in calls {
        let body = call.json_body().unwrap();
        assert!(body.get("action").is_some() && body.get("iv").is_none() && body.get("data").is_none(), "{body}");
    }
    let output = s.function.output();
    let warnings: Vec<&str> = output.lines().filter(|line| line.contains("WX_API_SECURITY=off")).collect();
    assert_eq!(warnings.len(), 1, "one warning, at cold start: {output}");
    assert!(warnings[0].contains("\"level\":\"WARN\""), "{}", warnings[0]);
    for (name, value) in &keys {
        assert!(warnings[0].contains(name.as_str()), "{name} not named: {}", warnings[0]);
        for part in value.lines().filter(|part| part.len() > 16 && !part.starts_with("-----")) {
            assert!(!output.contains(part), "{name}'s value in the output");
        }
    }
}

#[test]
fn platform_mode_signs_with_the_component_appid_and_keys() {
    let emu = Emulator::start().unwrap();
    emu.set_api_security_enforcement(DEMO_COMPONENT_APPID, "required");
    let api = RuntimeApi::start();
    let mut env: Vec<(String, String)> = vec![
        ("WX_COMPONENT_APPID".into(), DEMO_COMPONENT_APPID.into()),
        ("WX_COMPONENT_SECRET".into(), DEMO_COMPONENT_SECRET.into()),
        ("WX_COMPONENT_TOKEN".into(), DEMO_COMPONENT_TOKEN.into()),
        ("WX_COMPONENT_AES_KEY".into(), DEMO_COMPONENT_AES_KEY.into()),
        ("WX_API_BASE".into(), emu.base_url().into()),
    ];
    env.extend(layer_env(&emu, DEMO_COMPONENT_APPID));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let _function = Function::spawn(&api, &env);
    let deliver = |push: PlatformPush| api.invoke(&push.http_api_event(), TIMEOUT).response();
    assert_eq!(deliver(emu.push_ticket(DEMO_COMPONENT_APPID))["statusCode"], 200);
    assert_eq!(deliver(emu.authorize(DEMO_COMPONENT_APPID, DEMO_APPID, &[40]))["statusCode"], 200);
    let result = api.invoke(&json!({"action":"list","authorizerAppid":DEMO_APPID}), TIMEOUT).response();
    // Required, and a mini program's appid would be refused (40237): only the platform's appid and keys pass.
    assert_eq!(result["errCode"], 0, "{result}");
    assert!(result["pluginList"].is_array());
}

#[test]
fn no_key_material_in_any_output_even_at_trace() {
    let s = secured(&[("RUST_LOG", "trace")]);
    let env = layer_env(&s.emu, DEMO_APPID);
    let value = |name: &str| env.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(s.succeeds(json!({"action":"list"}))["errCode"], 0);
    s.emu.script("/wxa/plugin", Fault::TamperedEnvelope, 1);
    let refused = format!("{:?}", s.invoke(json!({"action":"list"})));
    let mut seen = s.function.output() + &refused;
    // A cold start refused for a bad key names the variable only.
    let api = RuntimeApi::start();
    let bad_key = value("WX_API_SYM_KEY").replace('=', "") + "!";
    let mut refused_env: Vec<(String, String)> = env.clone();
    refused_env.push(("WX_APPID".into(), DEMO_APPID.into()));
    refused_env.push(("WX_SECRET".into(), "secret-of-the-demo".into()));
    refused_env.retain(|(n, _)| n != "WX_API_SYM_KEY");
    refused_env.push(("WX_API_SYM_KEY".into(), bad_key.clone()));
    let refused_env: Vec<(&str, &str)> = refused_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut f = Function::spawn(&api, &refused_env);
    f.wait_exit(Duration::from_secs(10)).expect("the cold start fails");
    let init = format!("{:?}{}", api.init_error(), f.output());
    assert!(init.contains("WX_API_SYM_KEY"), "{init}");
    seen.push_str(&init);
    let private_key = value("WX_API_PRIVATE_KEY");
    let key_lines: Vec<&str> = private_key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(key_lines.len() > 10);
    for secret in [value("WX_API_SYM_KEY"), bad_key].iter().map(String::as_str).chain(key_lines) {
        assert!(!seen.contains(secret), "key material in the output: {secret}");
    }
    assert!(!seen.contains(&private_key[..64]));
}
