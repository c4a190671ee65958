//! What API security adds to one plugin call, on the function's side and without the network: sealing the request
//! (AES-256-GCM + an RSA-2048 PSS signature) and opening the answer (a signature verified against the platform
//! certificate, AES-256-GCM decrypted), beside the plain call's own JSON work on the same request and answer.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use wechat_wire::envelope::{additional_data, signed_bytes, PlatformCert, Signer, SymKey};
use wx_plugin_manager::present;
use wx_plugin_manager::wechat::security::{ApiSecurity, ApiSecurityKeys};

const APP_KEY: &str = include_str!("../crates/wire/tests/fixtures/api-security/official-example-app-private-key.pem");
const PLATFORM_KEY: &str = include_str!("../crates/wire/tests/fixtures/api-security/test-platform-key.pem");
const PLATFORM_CERT: &str = include_str!("../crates/wire/tests/fixtures/api-security/test-platform-cert.pem");
const SYM_KEY: &str = "otUpngOjU+nVQaWJIC3D/yMLV17RKaP6t4Ot9tbnzLY=";
const SYM_SN: &str = "fa05fe1e5bcc79b81ad5ad4b58acf787";
const APPID: &str = "wxba6223c06417af7b";
const PATH: &str = "/wxa/plugin";
const NOW: u64 = 1_800_000_000;

fn answer_fields() -> Value {
    let list: Vec<Value> = (0..5)
        .map(
            |i| json!({"appid": format!("wxplugin{i:08}"), "status": 2, "nickname": "Map", "headimgurl": "http://x/0"}),
        )
        .collect();
    json!({"errcode": 0, "errmsg": "ok", "plugin_list": list})
}

/// WeChat's sealed answer to a list call, as the emulator would send it.
fn sealed_answer() -> (http::HeaderMap, Vec<u8>) {
    let mut plaintext = json!({"_n": "abcdefghijklmnopqrstuv", "_appid": APPID, "_timestamp": NOW});
    plaintext.as_object_mut().unwrap().extend(answer_fields().as_object().unwrap().clone());
    let urlpath = format!("https://api.weixin.qq.com{PATH}");
    let aad = additional_data(&urlpath, APPID, NOW, SYM_SN);
    let envelope =
        SymKey::from_base64(SYM_KEY).unwrap().seal([9; 12], aad.as_bytes(), plaintext.to_string().as_bytes());
    let body = serde_json::to_vec(&envelope).unwrap();
    let signature = Signer::from_pem(PLATFORM_KEY).unwrap().sign(&signed_bytes(&urlpath, APPID, NOW, &body)).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("Wechatmp-Appid", APPID.parse().unwrap());
    headers.insert("Wechatmp-TimeStamp", NOW.to_string().parse().unwrap());
    headers.insert("Wechatmp-Serial", "current".parse().unwrap());
    headers.insert("Wechatmp-Signature", signature.parse().unwrap());
    (headers, body)
}

fn one_call(c: &mut Criterion) {
    let keys = ApiSecurityKeys {
        sym_key: SymKey::from_base64(SYM_KEY).unwrap(),
        sym_sn: SYM_SN.into(),
        signer: Signer::from_pem(APP_KEY).unwrap(),
        key_sn: None,
        platform_certs: vec![("current".into(), PlatformCert::from_pem(PLATFORM_CERT).unwrap())],
        signing_origin: "https://api.weixin.qq.com".into(),
    };
    let layer = ApiSecurity::new(Arc::new(keys), APPID);
    let request = json!({"action": "list"});
    let fields = request.as_object().unwrap();
    let plain_answer = serde_json::to_vec(&answer_fields()).unwrap();
    let (headers, sealed) = sealed_answer();

    let mut group = c.benchmark_group("one_call");
    group.bench_function("plain: body out, answer in", |b| {
        b.iter(|| {
            let body = serde_json::to_vec(std::hint::black_box(&request)).unwrap();
            (body, present::camel_object(&plain_answer).unwrap())
        })
    });
    group.bench_function("secured: seal and sign, verify and open", |b| {
        b.iter(|| {
            let out = layer.seal(PATH, std::hint::black_box(fields), NOW).unwrap();
            let answer = layer.open(PATH, &headers, &sealed, NOW).unwrap();
            (out.body, present::camel_fields(answer))
        })
    });
    group.bench_function("secured: seal and sign only", |b| b.iter(|| layer.seal(PATH, fields, NOW).unwrap()));
    group.bench_function("secured: verify and open only", |b| {
        b.iter(|| layer.open(PATH, &headers, &sealed, NOW).unwrap())
    });
    group.finish();
}

criterion_group!(benches, one_call);
criterion_main!(benches);
