//! The function behind HTTP gateways, through the real binary under the local Runtime API: each gateway's shape,
//! each way in (gateway authorisation, the bearer key) and each way out (wrong key, no key, wrong method, oversized
//! or malformed bodies), base64 bodies, and the status table. Refused requests never reach WeChat.

use std::time::Duration;

use crate::support::setup::{Setup, TIMEOUT};
use serde_json::{json, Value};
use wechat_emulator::Fault;

const KEY: &str = "demo-gateway-key-0123456789";

fn sample(name: &str) -> Value {
    let path = format!("{}/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `sample` with its body replaced by `body` (JSON text, not base64).
fn with_body(name: &str, body: &str) -> Value {
    let mut event = sample(name);
    event["body"] = json!(body);
    event["isBase64Encoded"] = json!(false);
    event
}

struct Answer {
    status: u64,
    headers: Value,
    body: Value,
    raw: Value,
}

fn http(s: &Setup, event: Value) -> Answer {
    http_within(s, event, TIMEOUT)
}

fn http_within(s: &Setup, event: Value, limit: Duration) -> Answer {
    let raw = s.api.invoke(&event, limit).response();
    let body = serde_json::from_str(raw["body"].as_str().expect("a text body")).expect("a JSON body");
    let headers = if raw["headers"].as_object().is_some_and(|h| !h.is_empty()) {
        raw["headers"].clone()
    } else {
        // ALB with multi-value headers on.
        let multi = raw["multiValueHeaders"].as_object().unwrap();
        Value::Object(multi.iter().map(|(k, v)| (k.clone(), v[0].clone())).collect())
    };
    assert_eq!(headers["content-type"], "application/json; charset=utf-8", "{raw}");
    Answer { status: raw["statusCode"].as_u64().unwrap(), headers, body, raw }
}

fn with_key() -> Setup {
    Setup::new(&[("GATEWAY_API_KEY", KEY)])
}

#[test]
fn each_gateway_kind_is_answered_in_its_own_shape() {
    let s = with_key();
    for name in ["rest-api-iam", "http-api-iam", "function-url-iam", "alb-bearer"] {
        let a = http(&s, sample(name));
        assert_eq!(a.status, 200, "{name}: {}", a.raw);
        assert_eq!(a.body["errMsg"], "openapi.pluginManager.getPluginList:ok", "{name}");
        assert_eq!(a.body["pluginList"].as_array().unwrap().len(), 4, "{name}");
        assert_eq!(a.raw["isBase64Encoded"], false);
        match name {
            "alb-bearer" => assert_eq!(a.raw["statusDescription"], "200 OK"),
            "rest-api-iam" => assert!(a.raw.get("cookies").is_none() && a.raw.get("statusDescription").is_none()),
            _ => assert!(a.raw["cookies"].is_array()),
        }
    }
    // An ALB target group with multi-value headers on gets them back that way.
    let mut multi = sample("alb-bearer");
    let headers = multi.as_object_mut().unwrap().remove("headers").unwrap();
    let multi_headers: serde_json::Map<String, Value> =
        headers.as_object().unwrap().iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
    multi["multiValueHeaders"] = Value::Object(multi_headers);
    let a = http(&s, multi);
    assert_eq!(a.status, 200, "{}", a.raw);
    assert_eq!(a.raw["multiValueHeaders"]["content-type"], json!(["application/json; charset=utf-8"]));
    // The same answer as a direct invocation of the body.
    let direct = s.succeeds(json!({"action":"list"}));
    assert_eq!(http(&s, sample("http-api-iam")).body, direct);
}

#[test]
fn gateway_authorisation_of_every_kind_is_accepted_without_a_key() {
    let s = Setup::new(&[]);
    let mut lambda_authorised = sample("rest-api-anonymous");
    lambda_authorised["requestContext"]["authorizer"] = json!({"principalId":"backend","integrationLatency":12});
    let mut cognito = sample("rest-api-anonymous");
    cognito["requestContext"]["authorizer"] = json!({"claims":{"sub":"backend"}});
    let mut http_lambda = sample("http-api-anonymous");
    http_lambda["requestContext"]["authorizer"] = json!({"lambda":{"tenant":"demo"}});
    let cases = [
        sample("rest-api-iam"),
        lambda_authorised,
        cognito,
        sample("http-api-iam"),
        sample("http-api-jwt-base64"),
        http_lambda,
        sample("function-url-iam"),
    ];
    for event in cases {
        let a = http(&s, event.clone());
        assert_eq!(a.status, 200, "{event}\n{}", a.raw);
    }
}

#[test]
fn without_gateway_authorisation_only_the_right_key_gets_in() {
    let s = with_key();
    let anonymous = ["rest-api-anonymous", "http-api-anonymous", "function-url-anonymous", "alb-anonymous"];
    for name in anonymous {
        let a = http(&s, sample(name));
        assert_eq!(a.status, 401, "{name}");
        assert_eq!(a.body["errCode"], -401);
        assert_eq!(a.headers["www-authenticate"], "Bearer");
        assert!(a.body["errMsg"].as_str().unwrap().contains("Authorization: Bearer"));
    }
    let keyed = |name: &str, header: &str| {
        let mut event = sample(name);
        event["headers"]["authorization"] = json!(header);
        event
    };
    for name in anonymous {
        assert_eq!(http(&s, keyed(name, &format!("Bearer {KEY}"))).status, 200, "{name} with the key");
        assert_eq!(http(&s, keyed(name, &format!("bearer {KEY}"))).status, 200, "{name}: the scheme is case-blind");
        assert_eq!(http(&s, keyed(name, "Bearer demo-gateway-key-012345678")).status, 401, "{name}, a wrong key");
        assert_eq!(http(&s, keyed(name, &format!("Basic {KEY}"))).status, 401, "{name}, not a bearer");
        assert_eq!(http(&s, keyed(name, "Bearer ")).status, 401, "{name}, an empty key");
    }
    let calls_before_refusals = s.emu.requests().len();
    assert!(calls_before_refusals > 0);

    // Anonymous requests carry the authorisation fields as nulls: none of that is authorisation.
    let with_context = |name: &str, authorizer: Value| {
        let mut event = sample(name);
        event["requestContext"]["authorizer"] = authorizer;
        event
    };
    let nulls = [
        with_context("rest-api-anonymous", json!({"claims":null,"scopes":null})),
        with_context("rest-api-anonymous", json!({"principalId":null})),
        with_context("rest-api-anonymous", json!({"claims":{},"principalId":""})),
        with_context("http-api-anonymous", json!({"jwt":{"claims":null,"scopes":null}})),
        with_context("http-api-anonymous", json!({"iam":{"accessKey":null,"userArn":null}})),
        with_context("http-api-anonymous", json!({"lambda":null})),
        with_context("function-url-anonymous", json!({"iam":{"accessKey":null}})),
        with_context("function-url-anonymous", json!({"iam":{}})),
    ];
    for event in nulls {
        assert_eq!(http(&s, event.clone()).status, 401, "{}", event["requestContext"]["authorizer"]);
    }
    // An HTTP API with payload format 1.0 and no authorizer, as AWS documents it.
    let mut v1 = sample("rest-api-anonymous");
    v1["version"] = json!("1.0");
    v1["requestContext"]["authorizer"] = json!({"claims":null,"scopes":null});
    assert_eq!(http(&s, v1).status, 401);
    assert_eq!(s.emu.requests().len(), calls_before_refusals, "a refused request reached WeChat");

    // A function with no key configured admits nobody by key.
    let s = Setup::new(&[]);
    for name in anonymous {
        assert_eq!(http(&s, keyed(name, &format!("Bearer {KEY}"))).status, 401, "{name}");
    }
    assert_eq!(http(&s, sample("alb-bearer")).status, 401);
    assert!(s.emu.requests().is_empty(), "a refused request reaches WeChat: {:?}", s.emu.requests());
    assert!(!s.function.output().contains(KEY), "the key is never logged");
}

#[test]
fn base64_bodies_are_decoded() {
    let s = Setup::new(&[]);
    let a = http(&s, sample("http-api-jwt-base64"));
    assert_eq!(a.status, 200);
    assert_eq!(a.body["errMsg"], "openapi.pluginManager.getPluginDevApplyList:ok");
    assert_eq!(a.body["applyList"].as_array().unwrap().len(), 5);
    let mut broken = sample("http-api-jwt-base64");
    broken["body"] = json!("not base64 at all!");
    let a = http(&s, broken);
    assert_eq!((a.status, a.body["errCode"].as_i64()), (400, Some(-400)));
    assert!(a.body["errMsg"].as_str().unwrap().contains("base64"));
}

#[test]
fn wrong_methods_and_bad_bodies_are_refused_before_any_call() {
    let s = Setup::new(&[]);
    for name in ["rest-api-iam", "http-api-iam", "function-url-iam"] {
        let mut get = sample(name);
        get["httpMethod"] = json!("GET");
        if get["requestContext"]["http"].is_object() {
            get["requestContext"]["http"]["method"] = json!("GET");
        }
        let a = http(&s, get);
        assert_eq!((a.status, a.body["errCode"].as_i64()), (405, Some(-405)), "{name}");
        assert_eq!(a.headers["allow"], "POST");
    }
    let big = format!("{{\"action\":\"list\",\"pad\":\"{}\"}}", "x".repeat(64 * 1024));
    let a = http(&s, with_body("http-api-iam", &big));
    assert_eq!((a.status, a.body["errCode"].as_i64()), (413, Some(-413)));
    let mut big_base64 = sample("http-api-iam");
    big_base64["body"] = json!("QUJD".repeat(30_000));
    big_base64["isBase64Encoded"] = json!(true);
    assert_eq!(http(&s, big_base64).status, 413);
    for body in ["not json", "[1,2]", "\"list\"", ""] {
        let a = http(&s, with_body("http-api-iam", body));
        assert_eq!((a.status, a.body["errCode"].as_i64()), (400, Some(-400)), "{body:?}");
    }
    let mut no_body = sample("rest-api-iam");
    no_body["body"] = Value::Null;
    assert_eq!(http(&s, no_body).status, 400);
    // A JSON object that is not a valid call: the direct invocation's InvalidEvent, as a 400.
    let a = http(&s, with_body("http-api-iam", r#"{"action":"unbind","pluginAppId":"x"}"#));
    assert_eq!((a.status, a.body["errCode"].as_i64()), (400, Some(-501007)));
    assert!(a.body["errMsg"].as_str().unwrap().contains("did you mean pluginAppid?"));
    // A request shaped like a gateway's but unreadable as one.
    let mut garbled = sample("alb-anonymous");
    garbled["httpMethod"] = json!(42);
    assert_eq!(http(&s, garbled).status, 400);
    assert!(s.emu.requests().is_empty(), "a refused request reaches WeChat: {:?}", s.emu.requests());
}

#[test]
fn the_status_table_holds_end_to_end() {
    let s = Setup::new(&[]);
    let call = |body: Value| http(&s, with_body("http-api-iam", &body.to_string()));
    let status_and_code = |a: Answer| (a.status, a.body["errCode"].as_i64().unwrap());
    assert_eq!(status_and_code(call(json!({"action":"list"}))), (200, 0));
    assert_eq!(status_and_code(call(json!({"action":"unbind","pluginAppid":"wxpluginshop0001"}))), (404, 89244));
    assert_eq!(status_and_code(call(json!({"action":"unbind","pluginAppid":"wxpluginpay00001"}))), (409, 89243));
    assert_eq!(status_and_code(call(json!({"action":"apply","pluginAppid":"wxpluginclosed01"}))), (403, 89236));
    assert_eq!(
        status_and_code(call(json!({"action":"update","pluginAppid":"wxpluginchat0001","userVersion":"3.1.0"}))),
        (403, 89256)
    );
    assert_eq!(status_and_code(call(json!({"action":"dev_agree","appid":"wxbuyer000000002"}))), (409, 89240));
    assert_eq!(status_and_code(call(json!({"action":"fly"}))), (400, -501007));
    s.emu.script("/wxa/plugin", Fault::Errcode { errcode: 45009, errmsg: None }, 1);
    assert_eq!(status_and_code(call(json!({"action":"list"}))), (429, 45009));
    s.emu.script("/wxa/plugin", Fault::Errcode { errcode: -1, errmsg: None }, 1);
    assert_eq!(status_and_code(call(json!({"action":"unbind","pluginAppid":"wxpluginchat0001"}))), (502, -1));
    s.emu.script("/wxa/plugin", Fault::NonJson { body: None }, 1);
    assert_eq!(status_and_code(call(json!({"action":"unbind","pluginAppid":"wxpluginchat0001"}))), (502, -601001));
    s.emu.script("/wxa/plugin", Fault::Status { status: 500 }, 1);
    assert_eq!(status_and_code(call(json!({"action":"list"}))), (502, -501001));
    s.emu.script("/wxa/plugin", Fault::Delay { ms: 5_000 }, 1);
    let slow = http_within(&s, with_body("http-api-iam", r#"{"action":"list"}"#), Duration::from_secs(1));
    assert_eq!(status_and_code(slow), (504, -501002));

    let broken = Setup::new(&[("WX_SECRET", "not-the-secret")]);
    let a = http(&broken, sample("http-api-iam"));
    assert_eq!((a.status, a.body["errCode"].as_i64()), (500, Some(40125)));
}
