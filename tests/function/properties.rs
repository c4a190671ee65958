//! Property tests with a fixed budget (PROPTEST_CASES overrides it): the event parser and the gateway decoder never
//! panic and refuse anything invalid before WeChat is called; key conversion is stable for WeChat-shaped keys;
//! WXBizMsgCrypt opens what it sealed.

use std::time::{Duration, Instant};

use crate::support::demo::demo_config;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use wechat_emulator::Emulator;
use wx_plugin_manager::case::{camel_to_snake, snake_to_camel};
use wx_plugin_manager::edge::gateway::{self, Inbound};
use wx_plugin_manager::{App, Error, Operation};

const CASES: u32 = 1024;

/// Keys a caller might write: the real ones, their snake spellings, the usual slips, and noise.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "action", "pluginAppid", "plugin_appid", "pluginAppId", "plugin_app_id", "reason", "userVersion",
            "user_version", "userversion", "page", "num", "appid", "appId", "Action", "",
        ])
        .prop_map(str::to_owned),
        1 => "[a-zA-Z_]{0,12}",
        1 => any::<String>(),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..5).prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        prop::sample::select(vec![
            "apply",
            "list",
            "unbind",
            "update",
            "dev_apply_list",
            "dev_agree",
            "dev_refuse",
            "dev_delete",
            "",
            "wxpluginchat0001",
            "Unbind",
            "getPluginList",
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// Mostly objects with an action, so that field validation is exercised, not just the first refusal.
fn event() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => json_value(),
        3 => (scalar(), prop::collection::vec((key(), json_value()), 0..5)).prop_map(|(action, fields)| {
            let mut map: Map<String, Value> = fields.into_iter().collect();
            map.insert("action".into(), action);
            Value::Object(map)
        }),
    ]
}

fn wechat_snake_key() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,8}(_[a-z][a-z0-9]{0,8}){0,4}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn the_event_parser_never_panics_and_only_refuses_as_invalid_event(event in event()) {
        match Operation::from_event(&event) {
            Ok(op) => {
                let body = op.body();
                prop_assert_eq!(&body["action"], &json!(op.name()));
                // Every key sent is WeChat's snake_case.
                for key in body.as_object().unwrap().keys() {
                    prop_assert_eq!(key, &camel_to_snake(key));
                }
            }
            Err(Error::InvalidEvent { detail, .. }) => prop_assert!(!detail.is_empty()),
            Err(other) => prop_assert!(false, "not an InvalidEvent: {other:?}"),
        }
    }

    #[test]
    fn wxbizmsgcrypt_encrypt_then_open_gives_the_message_back(
        message in any::<String>(),
        key in "[A-Za-z0-9+/]{43}",
        token in "[A-Za-z0-9]{3,32}",
        appid in "wx[0-9a-f]{16}",
        timestamp in "[0-9]{10}",
        nonce in "[0-9]{1,10}",
    ) {
        let crypt = wechat_wire::crypt::MsgCrypt::new(&token, &key, &appid).unwrap();
        let encrypt = crypt.encrypt(&message);
        let signature = crypt.msg_signature(&timestamp, &nonce, &encrypt);
        prop_assert_eq!(crypt.open(&signature, &timestamp, &nonce, &encrypt).unwrap(), message);
    }

    #[test]
    fn snake_to_camel_to_snake_is_stable_for_wechat_keys(key in wechat_snake_key()) {
        prop_assert_eq!(camel_to_snake(&snake_to_camel(&key)), key);
    }

    #[test]
    fn camel_to_snake_to_camel_is_stable_for_cloud_keys(key in "[a-z][a-z0-9]{0,6}([A-Z][a-z0-9]{1,6}){0,4}") {
        prop_assert_eq!(snake_to_camel(&camel_to_snake(&key)), key);
    }

    #[test]
    fn the_gateway_decoder_never_panics(
        sample in prop::sample::select(vec![
            "rest-api-iam", "rest-api-anonymous", "http-api-iam", "http-api-jwt-base64", "http-api-anonymous",
            "function-url-iam", "function-url-anonymous", "alb-bearer", "alb-anonymous",
        ]),
        edits in prop::collection::vec((prop::sample::select(vec![
            "/httpMethod", "/body", "/isBase64Encoded", "/headers", "/headers/authorization", "/requestContext",
            "/requestContext/authorizer", "/requestContext/identity", "/requestContext/http/method", "/version",
            "/requestContext/elb", "/multiValueHeaders",
        ]), json_value()), 0..4),
        body in prop_oneof![any::<String>(), "[A-Za-z0-9+/=]{0,40}".prop_map(String::from)],
        key in prop::option::of("[!-~]{16,24}"),
    ) {
        let path = format!("{}/events/{sample}.json", env!("CARGO_MANIFEST_DIR"));
        let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        event["body"] = json!(body);
        for (pointer, value) in edits {
            if let Some(slot) = event.pointer_mut(pointer) {
                *slot = value;
            }
        }
        let key = key.map(secrecy::SecretString::from);
        if let Inbound::Http(kind, request) = gateway::recognise(event) {
            let reply = match request {
                Ok(request) => match request.admit(key.as_ref()) {
                    Ok(admitted) => { prop_assert!(admitted.is_object()); gateway::Reply::ok(admitted) }
                    Err(refusal) => { prop_assert!(refusal.status >= 400); refusal }
                },
                Err(refusal) => refusal,
            };
            let shaped = gateway::respond(kind, reply, None);
            prop_assert!(shaped["statusCode"].is_number());
        }
    }
}

/// Invalid events go through the whole function in-process against the emulator: not one request reaches it.
#[test]
fn no_invalid_event_reaches_wechat() {
    let emulator = Emulator::start().unwrap();
    let config = demo_config(&emulator, &[("WX_METRICS", "off")]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let app = runtime.block_on(async { App::new(&config) }).unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(CASES));
    let refused = std::cell::Cell::new(0usize);
    runner
        .run(&event(), |event| {
            if Operation::from_event(&event).is_ok() {
                return Ok(());
            }
            refused.set(refused.get() + 1);
            let deadline = Instant::now() + Duration::from_secs(5);
            let outcome = runtime.block_on(wx_plugin_manager::edge::handle(&app, event.clone(), deadline, "property"));
            match outcome {
                Err(Error::InvalidEvent { .. }) => {}
                // A gateway-shaped event is answered in the gateway's shape, and must be a refusal.
                Ok(reply) => prop_assert!(reply["statusCode"].as_u64().is_some_and(|s| s >= 400), "{reply}"),
                Err(other) => prop_assert!(false, "{other:?}"),
            }
            prop_assert_eq!(emulator.requests().len(), 0, "{} reached WeChat", event);
            Ok(())
        })
        .unwrap();
    let refused = refused.get();
    assert!(refused > CASES as usize / 2, "the strategy mostly makes invalid events ({refused})");
}
