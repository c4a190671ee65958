//! Third-party platform mode through the real binary: WeChat's pushes arrive through a gateway, the function keeps
//! the ticket and the refresh tokens, and plugin calls go out with each mini program's authorizer token.

use std::time::Duration;

use crate::support::function::Function;
use crate::support::runtime_api::{Outcome, RuntimeApi};
use crate::support::setup::TIMEOUT;
use serde_json::{json, Value};
use wechat_emulator::{
    Emulator, Fault, PlatformPush, DEMO_APPID, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID, DEMO_COMPONENT_SECRET,
    DEMO_COMPONENT_TOKEN,
};
use wechat_wire::crypt::MsgCrypt;

const COMPONENT: &str = DEMO_COMPONENT_APPID;
/// A mini program with an approved plugin (wxplugin00000001) besides the demo one.
const BUYER: &str = "wxbuyer000000002";
const NO_TICKET: i64 = -602001;
const NOT_AUTHORISED: i64 = -602002;

fn platform_env<'a>(emu: &'a Emulator, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("WX_COMPONENT_APPID", COMPONENT),
        ("WX_COMPONENT_SECRET", DEMO_COMPONENT_SECRET),
        ("WX_COMPONENT_TOKEN", DEMO_COMPONENT_TOKEN),
        ("WX_COMPONENT_AES_KEY", DEMO_COMPONENT_AES_KEY),
        ("WX_API_BASE", emu.base_url()),
    ];
    env.extend_from_slice(extra);
    env
}

/// WeChat's POST to the authorisation-event URL as an HTTP API route without authorisation delivers it, with the
/// query and body given.
fn push_event(query: &str, body: &str) -> Value {
    PlatformPush { query: query.to_owned(), body: body.to_owned() }.http_api_event()
}

fn deliver(api: &RuntimeApi, push: &PlatformPush) -> Value {
    api.invoke(&push_event(&push.query, &push.body), TIMEOUT).response()
}

#[track_caller]
fn assert_success(reply: &Value) {
    assert_eq!(reply["statusCode"], 200, "{reply}");
    assert_eq!(reply["body"], "success", "the bare string WeChat wants: {reply}");
    assert!(reply["headers"]["content-type"].as_str().unwrap().starts_with("text/plain"), "{reply}");
}

fn update_for(authorizer: &str) -> Value {
    json!({"action":"update","pluginAppid":"wxpluginchat0001","userVersion":"3.1.0","authorizerAppid":authorizer})
}

fn list_for(authorizer: &str) -> Value {
    json!({"action":"list","authorizerAppid":authorizer})
}

/// The error's kind, errCode and errMsg.
#[track_caller]
fn failure(outcome: Outcome) -> (String, i64, String) {
    let (kind, message) = outcome.error();
    let body: Value = serde_json::from_str(&message).unwrap();
    (kind, body["errCode"].as_i64().unwrap(), body["errMsg"].as_str().unwrap().to_owned())
}

struct Platform {
    emu: Emulator,
    api: RuntimeApi,
    function: Function,
}

fn platform(extra: &[(&str, &str)]) -> Platform {
    let emu = Emulator::start().unwrap();
    let api = RuntimeApi::start();
    let function = Function::spawn(&api, &platform_env(&emu, extra));
    Platform { emu, api, function }
}

#[test]
fn a_ticket_push_is_stored_and_an_authorised_mini_program_gets_its_quick_update() {
    // At the most verbose log level, so that the check on secrets below covers every log line there is.
    let p = platform(&[("RUST_LOG", "trace")]);
    assert_success(&deliver(&p.api, &p.emu.push_ticket(COMPONENT)));
    assert_success(&deliver(&p.api, &p.emu.authorize(COMPONENT, DEMO_APPID, &[18, 40])));
    assert_eq!(p.emu.component_token_calls(), 1, "the stored ticket bought the component token for the exchange");
    assert_eq!(p.emu.count("/cgi-bin/component/api_query_auth"), 1);

    let result = p.api.invoke(&update_for(DEMO_APPID), TIMEOUT).response();
    assert_eq!(result["errCode"], 0, "{result}");
    assert_eq!(result["errMsg"], "openapi.pluginManager.applyPlugin:ok");
    assert_eq!(p.emu.status("wxpluginchat0001", DEMO_APPID).map(u8::from), Some(2));
    // The exchange's own authorizer token served the call: no second token request.
    assert_eq!(p.emu.authorizer_token_calls(), 0);
    let output = p.function.output();
    let ticket = p.emu.current_ticket(COMPONENT).unwrap();
    let refresh = p.emu.refresh_token(COMPONENT, DEMO_APPID).unwrap();
    for secret in [DEMO_COMPONENT_SECRET, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_TOKEN, &ticket, &refresh] {
        assert!(!output.contains(secret), "a platform secret was logged: {secret}");
    }
    for token in p.emu.issued_tokens() {
        assert!(!output.contains(&token), "a token was logged");
    }
}

#[test]
fn forged_foreign_doctype_and_non_xml_pushes_are_refused_and_change_nothing() {
    let p = platform(&[]);
    let genuine = p.emu.push_ticket(COMPONENT);

    let forged_query = genuine.query.replace("msg_signature=", "msg_signature=0");
    let forged = p.api.invoke(&push_event(&forged_query, &genuine.body), TIMEOUT).response();
    assert_eq!(forged["statusCode"], 401, "{forged}");

    // Sealed with the platform's own token and key, but for another appid: the trailer gives it away.
    let other = MsgCrypt::new(DEMO_COMPONENT_TOKEN, DEMO_COMPONENT_AES_KEY, "wxanother0000001").unwrap();
    let inner = format!(
        "<xml><AppId><![CDATA[{COMPONENT}]]></AppId><CreateTime>1763800000</CreateTime>\
         <InfoType><![CDATA[component_verify_ticket]]></InfoType>\
         <ComponentVerifyTicket><![CDATA[ticket@@@foreign]]></ComponentVerifyTicket></xml>"
    );
    let encrypt = other.encrypt(&inner);
    let signature = other.msg_signature("1763800000", "42", &encrypt);
    let query = format!("timestamp=1763800000&nonce=42&encrypt_type=aes&msg_signature={signature}");
    let body = format!("<xml><AppId><![CDATA[{COMPONENT}]]></AppId><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
    let foreign = p.api.invoke(&push_event(&query, &body), TIMEOUT).response();
    assert_eq!(foreign["statusCode"], 400, "{foreign}");
    assert_eq!(serde_json::from_str::<Value>(foreign["body"].as_str().unwrap()).unwrap()["errCode"], -40005);

    let doctype = p.emu.seal(
        COMPONENT,
        "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY t SYSTEM \"file:///etc/passwd\">]>\
         <xml><AppId>&t;</AppId><InfoType>component_verify_ticket</InfoType></xml>",
    );
    let refused = deliver(&p.api, &doctype);
    assert_eq!(refused["statusCode"], 400, "{refused}");

    let not_xml = p.api.invoke(&push_event(&genuine.query, "ticket=please"), TIMEOUT).response();
    assert_eq!(not_xml["statusCode"], 400, "{not_xml}");

    // Nothing was kept: no ticket, so no call to WeChat at all.
    let (kind, code, message) = failure(p.api.invoke(&list_for(DEMO_APPID), TIMEOUT));
    assert_eq!((kind.as_str(), code), ("TokenError", NO_TICKET), "{message}");
    assert!(message.contains("no component_verify_ticket"), "{message}");
    assert_eq!(p.emu.requests().len(), 0);
}

#[test]
fn an_event_without_authorizer_appid_is_refused_before_any_call() {
    let p = platform(&[]);
    assert_success(&deliver(&p.api, &p.emu.push_ticket(COMPONENT)));
    let (kind, code, message) = failure(p.api.invoke(&json!({"action":"list"}), TIMEOUT));
    assert_eq!((kind.as_str(), code), ("InvalidEvent", -501007));
    assert!(message.contains("missing field authorizerAppid"), "{message}");
    assert_eq!(p.emu.requests().len(), 0);
}

#[test]
fn a_gateway_call_still_needs_the_gateway_s_authentication() {
    let p = platform(&[]);
    let mut event = push_event("", r#"{"action":"list","authorizerAppid":"wxdemo0000000001"}"#);
    event["headers"]["content-type"] = json!("application/json");
    let reply = p.api.invoke(&event, TIMEOUT).response();
    assert_eq!(reply["statusCode"], 401, "a request without a signature is no push: {reply}");
    assert_eq!(p.emu.requests().len(), 0);
}

#[test]
fn a_revoked_mini_program_fails_clearly_whether_or_not_the_push_arrived() {
    let p = platform(&[]);
    assert_success(&deliver(&p.api, &p.emu.push_ticket(COMPONENT)));
    assert_success(&deliver(&p.api, &p.emu.authorize(COMPONENT, DEMO_APPID, &[40])));
    assert_success(&deliver(&p.api, &p.emu.authorize(COMPONENT, BUYER, &[40])));
    assert_eq!(p.api.invoke(&list_for(DEMO_APPID), TIMEOUT).response()["errCode"], 0);
    assert_eq!(p.api.invoke(&list_for(BUYER), TIMEOUT).response()["errCode"], 0);

    // The push arrives: the function forgets the mini program, and WeChat does not list it either.
    assert_success(&deliver(&p.api, &p.emu.revoke(COMPONENT, DEMO_APPID)));
    let (kind, code, message) = failure(p.api.invoke(&update_for(DEMO_APPID), TIMEOUT));
    assert_eq!((kind.as_str(), code), ("TokenError", NOT_AUTHORISED), "{message}");
    assert!(message.contains(&format!("mini program {DEMO_APPID} must authorise platform {COMPONENT} again")));

    // The push is lost: the cached token is refused, and WeChat says the authorisation is gone.
    let _lost = p.emu.revoke(COMPONENT, BUYER);
    let (kind, code, message) = failure(p.api.invoke(&list_for(BUYER), TIMEOUT));
    assert_eq!((kind.as_str(), code), ("TokenError", 61003), "{message}");
    assert!(message.contains(&format!("mini program {BUYER} must authorise platform {COMPONENT} again")));
}

#[test]
fn during_a_key_rotation_pushes_under_the_previous_key_are_still_taken() {
    let emu = Emulator::start().unwrap();
    let api = RuntimeApi::start();
    // The console has a new key; WeChat still pushes under the old one for a while.
    let new_key = "rotatedComponentAesKey0123456789abcdefghijk";
    let env = platform_env(
        &emu,
        &[("WX_COMPONENT_AES_KEY", new_key), ("WX_COMPONENT_AES_KEY_PREVIOUS", DEMO_COMPONENT_AES_KEY)],
    );
    let _function = Function::spawn(&api, &env);
    assert_success(&deliver(&api, &emu.push_ticket(COMPONENT)));
    assert_success(&deliver(&api, &emu.authorize(COMPONENT, DEMO_APPID, &[40])));
    assert_eq!(api.invoke(&list_for(DEMO_APPID), TIMEOUT).response()["errCode"], 0);
}

#[test]
fn expired_component_and_authorizer_tokens_are_each_fetched_again_once() {
    let p = platform(&[]);
    assert_success(&deliver(&p.api, &p.emu.push_ticket(COMPONENT)));
    assert_success(&deliver(&p.api, &p.emu.authorize(COMPONENT, DEMO_APPID, &[40])));
    assert_eq!(p.api.invoke(&list_for(DEMO_APPID), TIMEOUT).response()["errCode"], 0);
    assert_eq!((p.emu.component_token_calls(), p.emu.authorizer_token_calls()), (1, 0));

    // Two hours pass at WeChat (not on the function's clock): both cached tokens now answer 42001.
    p.emu.advance(Duration::from_secs(7300));
    let result = p.api.invoke(&list_for(DEMO_APPID), TIMEOUT).response();
    assert_eq!(result["errCode"], 0, "{result}");
    // The plugin call refused the authorizer token; api_authorizer_token refused the component token, which was
    // fetched again once, and api_authorizer_token asked again once; then the plugin call was retried once.
    assert_eq!((p.emu.component_token_calls(), p.emu.authorizer_token_calls()), (2, 2));
    assert_eq!(p.emu.count("/wxa/plugin"), 3);
}

#[test]
fn a_push_is_answered_within_wechat_s_five_seconds_even_when_the_exchange_hangs() {
    let p = platform(&[]);
    assert_success(&deliver(&p.api, &p.emu.push_ticket(COMPONENT)));
    p.emu.script("/cgi-bin/component/api_query_auth", Fault::Delay { ms: 8000 }, 1);
    let push = p.emu.authorize(COMPONENT, DEMO_APPID, &[40]);
    let started = std::time::Instant::now();
    // The invocation itself may last 10 s; WeChat gives up after 5.
    let reply = p.api.invoke(&push.http_api_event(), Duration::from_secs(10)).response();
    let took = started.elapsed();
    assert_success(&reply);
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    // The code was not exchanged in time; the mini program is recovered from WeChat's list on its first call.
    assert_eq!(p.api.invoke(&list_for(DEMO_APPID), TIMEOUT).response()["errCode"], 0);
    assert_eq!(p.emu.count("/cgi-bin/component/api_get_authorizer_list"), 1);
}
