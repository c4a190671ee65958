//! The emulator's API security (服务端API安全) over real HTTP on loopback, driven by a small client written here on the
//! wire primitives: secured calls and their sealed, signed answers; enforcement; each plain layer error; rotation;
//! the four spoiled answers; third-party mode.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use wechat_emulator::{
    Emulator, Fault, PlatformPush, Status, DEMO_APPID, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID,
    DEMO_COMPONENT_SECRET, DEMO_COMPONENT_TOKEN, FOREIGN_APPID,
};
use wechat_wire::crypt::MsgCrypt;
use wechat_wire::envelope::{
    additional_data, random, random_nonce_field, signed_bytes, Envelope, PlatformCert, Signer, SymKey,
};
use wx_plugin_manager::platform::push::{self, Push, Signed};

const PLUGIN: &str = "/wxa/plugin";
const BUYER1: &str = "wxbuyer000000001";
const SHOP: &str = "wxpluginshop0001";
/// The demo mini program's approved plugin that allows a quick update to 3.1.0.
const CHAT: &str = "wxpluginchat0001";
const CURRENT_SN: &str = "fd75db209ab0917d26920dcd8c2cc318";
const DEPRECATED_SN: &str = "1cbe33f27dccee109b962e0f07797446";

/// What the function holds to speak API security as one app, read from [`Emulator::api_security_env`].
struct Keys {
    appid: String,
    sym_key: SymKey,
    sym_sn: String,
    signer: Signer,
    certs: HashMap<String, PlatformCert>,
    origin: String,
}

impl Keys {
    fn of(emu: &Emulator, appid: &str) -> Keys {
        let env: HashMap<String, String> = emu.api_security_env(appid).into_iter().collect();
        assert_eq!(env["WX_API_SECURITY"], "on");
        assert_eq!(env["WX_API_KEY_SN"].len(), 32);
        let certs: HashMap<String, String> = serde_json::from_str(&env["WX_API_PLATFORM_CERTS"]).unwrap();
        Keys {
            appid: appid.to_owned(),
            sym_key: SymKey::from_base64(&env["WX_API_SYM_KEY"]).unwrap(),
            sym_sn: env["WX_API_SYM_SN"].clone(),
            signer: Signer::from_pem(&env["WX_API_PRIVATE_KEY"]).unwrap(),
            certs: certs.into_iter().map(|(sn, pem)| (sn, PlatformCert::from_pem(&pem).unwrap())).collect(),
            origin: env["WX_API_SIGNING_ORIGIN"].clone(),
        }
    }

    fn urlpath(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }
}

/// A secured request, before it is sent: each part can be spoiled by a test.
struct Request {
    appid: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
    body: String,
}

/// `fields` plus `_n`, `_appid` and `_timestamp`, sealed and signed as `keys.appid` at `ts`.
fn secured(keys: &Keys, path: &str, fields: Value, ts: u64) -> Request {
    let mut plaintext = json!({"_n": random_nonce_field().unwrap(), "_appid": keys.appid, "_timestamp": ts});
    plaintext.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    sealed_as(keys, path, &plaintext.to_string(), &keys.appid, ts)
}

/// `plaintext` sealed with the additional data of `appid` and `ts`, and signed over them.
fn sealed_as(keys: &Keys, path: &str, plaintext: &str, appid: &str, ts: u64) -> Request {
    let aad = additional_data(&keys.urlpath(path), appid, ts, &keys.sym_sn);
    let body =
        serde_json::to_string(&keys.sym_key.seal(random().unwrap(), aad.as_bytes(), plaintext.as_bytes())).unwrap();
    let signature = keys.signer.sign(&signed_bytes(&keys.urlpath(path), appid, ts, body.as_bytes())).unwrap();
    Request { appid: Some(appid.to_owned()), timestamp: Some(ts.to_string()), signature: Some(signature), body }
}

/// An answer as received.
struct Answer {
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn timestamp(&self) -> u64 {
        self.header("Wechatmp-TimeStamp").unwrap().parse().unwrap()
    }

    /// A plain answer: JSON, without API security headers.
    fn plain(&self) -> Value {
        assert!(self.header("Wechatmp-Signature").is_none(), "a plain answer is not signed: {:?}", self.headers);
        serde_json::from_str(&self.body).unwrap()
    }

    /// Whether `signature` (of the certificate numbered `serial`) covers the answer as the header appid's.
    fn verifies(&self, keys: &Keys, path: &str, serial: &str, signature: &str) -> bool {
        let (Some(serial), Some(signature)) = (self.header(serial), self.header(signature)) else { return false };
        let appid = self.header("Wechatmp-Appid").unwrap();
        let message = signed_bytes(&keys.urlpath(path), appid, self.timestamp(), self.body.as_bytes());
        keys.certs.get(serial).is_some_and(|cert| cert.verifies(&message, signature))
    }

    /// The decrypted answer (with its underscore fields), opened as the header appid's.
    fn decrypt(&self, keys: &Keys, path: &str) -> Option<Value> {
        let envelope: Envelope = serde_json::from_str(&self.body).ok()?;
        let appid = self.header("Wechatmp-Appid")?;
        let aad = additional_data(&keys.urlpath(path), appid, self.timestamp(), &keys.sym_sn);
        serde_json::from_slice(&keys.sym_key.open(&envelope, aad.as_bytes()).ok()?).ok()
    }

    /// What a careful client accepts: signed by the current certificate, for our appid, decrypting with matching
    /// `_appid` and `_timestamp`. Gives the answer without the underscore fields.
    fn open(&self, keys: &Keys, path: &str) -> Value {
        assert!(self.verifies(keys, path, "Wechatmp-Serial", "Wechatmp-Signature"), "{:?} {}", self.headers, self.body);
        assert_eq!(self.header("Wechatmp-Appid"), Some(keys.appid.as_str()));
        let mut answer = self.decrypt(keys, path).expect("decrypts");
        assert_eq!(answer["_appid"], keys.appid.as_str());
        assert_eq!(answer["_timestamp"].as_u64(), Some(self.timestamp()), "a number, the header's");
        assert!(answer["_n"].as_str().is_some_and(|n| n.len() >= 22));
        for field in ["_n", "_appid", "_timestamp"] {
            answer.as_object_mut().unwrap().remove(field);
        }
        answer
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn send(emu: &Emulator, path: &str, token: &str, request: &Request) -> Answer {
    let mut post = client().post(format!("{}{path}?access_token={token}", emu.base_url())).body(request.body.clone());
    for (name, value) in [
        ("Wechatmp-Appid", &request.appid),
        ("Wechatmp-TimeStamp", &request.timestamp),
        ("Wechatmp-Signature", &request.signature),
    ] {
        if let Some(value) = value {
            post = post.header(name, value);
        }
    }
    let response = post.send().await.unwrap();
    assert_eq!(response.status(), 200);
    Answer { headers: response.headers().clone(), body: response.text().await.unwrap() }
}

async fn send_plain(emu: &Emulator, path: &str, token: &str, body: Value) -> Answer {
    let request = Request { appid: None, timestamp: None, signature: None, body: body.to_string() };
    send(emu, path, token, &request).await
}

async fn token_of(emu: &Emulator, appid: &str) -> String {
    let secret = emu.world().account(appid).unwrap().secret.clone();
    let body = json!({"grant_type": "client_credential", "appid": appid, "secret": secret});
    let url = format!("{}/cgi-bin/stable_token", emu.base_url());
    let answer: Value = client().post(url).body(body.to_string()).send().await.unwrap().json().await.unwrap();
    answer["access_token"].as_str().unwrap_or_else(|| panic!("no token: {answer}")).to_owned()
}

fn now(emu: &Emulator) -> u64 {
    emu.api_security_now() as u64
}

fn list() -> Value {
    json!({"action": "list"})
}

/// The emulator with the demo mini program's API security switched to `enforcement`, its keys and a token.
async fn demo(enforcement: &str) -> (Emulator, Keys, String) {
    let emu = Emulator::start().unwrap();
    emu.set_api_security_enforcement(DEMO_APPID, enforcement);
    let keys = Keys::of(&emu, DEMO_APPID);
    let token = token_of(&emu, DEMO_APPID).await;
    (emu, keys, token)
}

/// A plain layer error: the code, WeChat's text and a rid.
fn assert_layer_error(answer: &Answer, code: i64, text: &str) {
    let answer = answer.plain();
    assert_eq!(answer["errcode"], code, "{answer}");
    let errmsg = answer["errmsg"].as_str().unwrap();
    assert!(errmsg.starts_with(&format!("{text} rid: ")), "{answer}");
}

#[tokio::test]
async fn a_secured_list_call_is_answered_encrypted_and_signed_by_the_current_certificate() {
    let (emu, keys, token) = demo("optional").await;
    let plain = send_plain(&emu, PLUGIN, &token, list()).await.plain();
    let answer = send(&emu, PLUGIN, &token, &secured(&keys, PLUGIN, list(), now(&emu))).await;
    assert_eq!(answer.header("Wechatmp-Serial"), Some(CURRENT_SN));
    assert!(answer.header("Wechatmp-Serial-Deprecated").is_none(), "no rotation");
    assert!(answer.timestamp().abs_diff(now(&emu)) <= 1, "the emulator's virtual now");
    let envelope: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(envelope.as_object().unwrap().keys().collect::<Vec<_>>(), ["iv", "data", "authtag"]);
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(envelope["iv"].as_str().unwrap()).unwrap().len(), 12);
    let opened = answer.open(&keys, PLUGIN);
    assert_eq!(opened, plain, "the same answer as a plain call's");
    assert_eq!(opened["plugin_list"].as_array().unwrap().len(), 4);

    // Each answer has its own IV and nonce; the devplugin endpoint speaks it too.
    let again = send(&emu, PLUGIN, &token, &secured(&keys, PLUGIN, list(), now(&emu))).await;
    assert_ne!(again.body, answer.body);
    let dev = json!({"action": "dev_apply_list", "page": 1, "num": 10});
    let dev = send(&emu, "/wxa/devplugin", &token, &secured(&keys, "/wxa/devplugin", dev, now(&emu))).await;
    assert_eq!(dev.open(&keys, "/wxa/devplugin")["errcode"], 0);
}

#[tokio::test]
async fn required_mode_refuses_a_plain_call_with_40233() {
    let (emu, keys, token) = demo("required").await;
    assert_layer_error(&send_plain(&emu, PLUGIN, &token, list()).await, 40233, "missing Wechatmp-Appid");
    let answer = send(&emu, PLUGIN, &token, &secured(&keys, PLUGIN, list(), now(&emu))).await;
    assert_eq!(answer.open(&keys, PLUGIN)["errcode"], 0);
    // Another account's plain calls are not concerned.
    let buyer = token_of(&emu, BUYER1).await;
    assert_eq!(send_plain(&emu, PLUGIN, &buyer, list()).await.plain()["errcode"], 0);
}

#[tokio::test]
async fn optional_mode_answers_a_plain_call_plain() {
    let (emu, _, token) = demo("optional").await;
    let answer = send_plain(&emu, PLUGIN, &token, list()).await;
    assert!(answer.header("Wechatmp-Appid").is_none() && answer.header("Wechatmp-Serial").is_none());
    assert_eq!(answer.plain()["errcode"], 0);
}

#[tokio::test]
async fn missing_headers_answer_40233_40231_and_40232() {
    let (emu, keys, token) = demo("optional").await;
    type Case = (fn(&mut Request), i64, &'static str);
    let cases: [Case; 4] = [
        (|r| r.appid = None, 40233, "missing Wechatmp-Appid"),
        (|r| r.timestamp = None, 40231, "missing Wechatmp-TimeStamp"),
        (|r| r.timestamp = Some("soon".into()), 40231, "missing Wechatmp-TimeStamp"),
        (|r| r.signature = None, 40232, "missing Wechatmp-Signature"),
    ];
    for (spoil, code, text) in cases {
        let mut request = secured(&keys, PLUGIN, list(), now(&emu));
        spoil(&mut request);
        assert_layer_error(&send(&emu, PLUGIN, &token, &request).await, code, text);
    }
}

#[tokio::test]
async fn an_unknown_appid_answers_40236_and_another_accounts_40237() {
    let (emu, keys, token) = demo("optional").await;
    let mut request = secured(&keys, PLUGIN, list(), now(&emu));
    request.appid = Some("wxnobody00000001".into());
    assert_layer_error(&send(&emu, PLUGIN, &token, &request).await, 40236, "invalid Wechatmp-Appid");
    request.appid = Some(BUYER1.into());
    assert_layer_error(&send(&emu, PLUGIN, &token, &request).await, 40237, "invalid Wechatmp-Appid match request");
}

#[tokio::test]
async fn keys_switched_off_or_never_set_answer_40238() {
    let (emu, keys, token) = demo("off").await;
    let request = secured(&keys, PLUGIN, list(), now(&emu));
    let text = "developer secret sym serial not existed";
    assert_layer_error(&send(&emu, PLUGIN, &token, &request).await, 40238, text);
    // A buyer has no keys at all: signed with the demo keys as the buyer, it gets the same answer.
    let buyer = token_of(&emu, BUYER1).await;
    let as_buyer = Keys { appid: BUYER1.to_owned(), ..keys };
    let request = secured(&as_buyer, PLUGIN, list(), now(&emu));
    assert_layer_error(&send(&emu, PLUGIN, &buyer, &request).await, 40238, text);
}

#[tokio::test]
async fn a_timestamp_more_than_300_seconds_away_answers_40240() {
    let (emu, keys, token) = demo("optional").await;
    for ts in [now(&emu) - 301, now(&emu) + 301] {
        let request = secured(&keys, PLUGIN, list(), ts);
        assert_layer_error(&send(&emu, PLUGIN, &token, &request).await, 40240, "expired Wechatmp-TimeStamp");
    }
    let within = secured(&keys, PLUGIN, list(), now(&emu) - 290);
    assert_eq!(send(&emu, PLUGIN, &token, &within).await.open(&keys, PLUGIN)["errcode"], 0);
}

#[tokio::test]
async fn a_signature_that_does_not_verify_answers_40234() {
    let (emu, keys, token) = demo("optional").await;
    // Signed by another key (the platform's, which the app does not hold).
    let other = Signer::from_pem(&emu.world().api_security.platform_cert.unwrap().private_key).unwrap();
    let wrong_key = Keys { signer: other, ..Keys::of(&emu, DEMO_APPID) };
    let by_another_key = secured(&wrong_key, PLUGIN, list(), now(&emu));
    // Signed over the host actually called instead of the signing origin.
    let local = Keys { origin: emu.base_url().to_owned(), ..Keys::of(&emu, DEMO_APPID) };
    let over_the_local_host = secured(&local, PLUGIN, list(), now(&emu));
    // A body changed after signing.
    let mut altered = secured(&keys, PLUGIN, list(), now(&emu));
    altered.body = secured(&keys, PLUGIN, list(), now(&emu)).body;
    for request in [by_another_key, over_the_local_host, altered] {
        assert_layer_error(&send(&emu, PLUGIN, &token, &request).await, 40234, "invalid signature");
    }
}

#[tokio::test]
async fn an_envelope_that_does_not_open_or_is_stamped_otherwise_answers_40235() {
    let (emu, keys, token) = demo("optional").await;
    let ts = now(&emu);
    let stamped = |appid: &str, ts: Value| json!({"_n": "x", "_appid": appid, "_timestamp": ts, "action": "list"});
    let wrong_sym_sn = Keys { sym_sn: "00000000000000000000000000000000".into(), ..Keys::of(&emu, DEMO_APPID) };
    let requests = [
        secured(&wrong_sym_sn, PLUGIN, list(), ts),
        sealed_as(&keys, PLUGIN, &stamped(BUYER1, json!(ts)).to_string(), DEMO_APPID, ts),
        sealed_as(&keys, PLUGIN, &stamped(DEMO_APPID, json!(ts - 1)).to_string(), DEMO_APPID, ts),
        sealed_as(&keys, PLUGIN, &stamped(DEMO_APPID, json!(ts.to_string())).to_string(), DEMO_APPID, ts),
        sealed_as(&keys, PLUGIN, "[1, 2]", DEMO_APPID, ts),
    ];
    for request in requests {
        assert_layer_error(&send(&emu, PLUGIN, &token, &request).await, 40235, "invalid encrypt data");
    }
    // Not an envelope at all, correctly signed.
    let body = list().to_string();
    let signature = keys.signer.sign(&signed_bytes(&keys.urlpath(PLUGIN), DEMO_APPID, ts, body.as_bytes())).unwrap();
    let plain_body =
        Request { appid: Some(DEMO_APPID.into()), timestamp: Some(ts.to_string()), signature: Some(signature), body };
    assert_layer_error(&send(&emu, PLUGIN, &token, &plain_body).await, 40235, "invalid encrypt data");
}

#[tokio::test]
async fn a_secured_apply_changes_the_state_exactly_like_a_plain_one() {
    let apply = json!({"action": "apply", "plugin_appid": SHOP, "reason": "a shop in the app"});
    let (secured_emu, keys, token) = demo("optional").await;
    let answer = send(&secured_emu, PLUGIN, &token, &secured(&keys, PLUGIN, apply.clone(), now(&secured_emu))).await;
    assert_eq!(answer.open(&keys, PLUGIN), json!({"errcode": 0, "errmsg": "ok"}));
    let (plain_emu, _, plain_token) = demo("off").await;
    assert_eq!(send_plain(&plain_emu, PLUGIN, &plain_token, apply.clone()).await.plain()["errcode"], 0);

    let without_time = |emu: &Emulator| {
        let mut world = serde_json::to_value(emu.world().applications).unwrap();
        world.as_array_mut().unwrap().iter_mut().for_each(|a| drop(a.as_object_mut().unwrap().remove("create_time")));
        world
    };
    assert_eq!(without_time(&secured_emu), without_time(&plain_emu));
    assert_eq!(secured_emu.status(SHOP, DEMO_APPID), Some(Status::Pending));

    // A business error of a secured call is answered secured.
    let again = send(&secured_emu, PLUGIN, &token, &secured(&keys, PLUGIN, apply, now(&secured_emu))).await;
    let refused = again.open(&keys, PLUGIN);
    assert_eq!(refused["errcode"], 89237, "{refused}");
    assert!(refused["errmsg"].as_str().unwrap().contains(" rid: "));
}

#[tokio::test]
async fn rotation_adds_a_deprecated_signature_that_verifies_with_the_deprecated_certificate() {
    let (emu, mut keys, token) = demo("optional").await;
    emu.set_api_security_rotation(DEMO_APPID, true);
    let answer = send(&emu, PLUGIN, &token, &secured(&keys, PLUGIN, list(), now(&emu))).await;
    assert_eq!(answer.header("Wechatmp-Serial"), Some(CURRENT_SN));
    assert_eq!(answer.header("Wechatmp-Serial-Deprecated"), Some(DEPRECATED_SN));
    let current_only = keys.certs.clone();
    let (sn, pem) = emu.deprecated_platform_cert();
    assert_eq!(sn, DEPRECATED_SN);
    keys.certs = HashMap::from([(sn, PlatformCert::from_pem(&pem).unwrap())]);
    assert!(answer.verifies(&keys, PLUGIN, "Wechatmp-Serial-Deprecated", "Wechatmp-Signature-Deprecated"));
    assert!(!answer.verifies(&keys, PLUGIN, "Wechatmp-Serial", "Wechatmp-Signature"), "the old cert only");
    keys.certs = current_only;
    assert_eq!(answer.open(&keys, PLUGIN)["errcode"], 0);

    emu.set_api_security_rotation(DEMO_APPID, false);
    let answer = send(&emu, PLUGIN, &token, &secured(&keys, PLUGIN, list(), now(&emu))).await;
    assert!(answer.header("Wechatmp-Signature-Deprecated").is_none());
}

#[tokio::test]
async fn a_tampered_envelope_no_longer_verifies_nor_decrypts() {
    let (emu, keys, token) = demo("optional").await;
    emu.script(PLUGIN, Fault::TamperedEnvelope, 1);
    let answer = send(&emu, PLUGIN, &token, &secured(&keys, PLUGIN, list(), now(&emu))).await;
    assert_eq!(answer.header("Wechatmp-Serial"), Some(CURRENT_SN));
    assert!(!answer.verifies(&keys, PLUGIN, "Wechatmp-Serial", "Wechatmp-Signature"));
    assert!(answer.decrypt(&keys, PLUGIN).is_none());
    let next = send(&emu, PLUGIN, &token, &secured(&keys, PLUGIN, list(), now(&emu))).await;
    assert_eq!(next.open(&keys, PLUGIN)["errcode"], 0, "scripted once");
}

#[tokio::test]
async fn an_unknown_certificate_names_a_number_the_client_was_not_given() {
    let (emu, mut keys, token) = demo("optional").await;
    emu.set_api_security_rotation(DEMO_APPID, true);
    emu.script(PLUGIN, Fault::UnknownCertificate, 1);
    let answer = send(&emu, PLUGIN, &token, &secured(&keys, PLUGIN, list(), now(&emu))).await;
    let serial = answer.header("Wechatmp-Serial").unwrap();
    assert!(serial.len() == 32 && serial != CURRENT_SN && serial != DEPRECATED_SN, "{serial}");
    assert!(
        answer.header("Wechatmp-Serial-Deprecated").is_none()
            && answer.header("Wechatmp-Signature-Deprecated").is_none()
    );
    assert!(!answer.verifies(&keys, PLUGIN, "Wechatmp-Serial", "Wechatmp-Signature"));
    // Not the current key under another number either.
    let current = keys.certs.remove(CURRENT_SN).unwrap();
    keys.certs.insert(serial.to_owned(), current);
    assert!(!answer.verifies(&keys, PLUGIN, "Wechatmp-Serial", "Wechatmp-Signature"));
    assert_eq!(answer.decrypt(&keys, PLUGIN).unwrap()["errcode"], 0, "only the certificate is wrong");
}

#[tokio::test]
async fn a_foreign_appid_answer_is_consistent_but_made_out_to_another_app() {
    let (emu, keys, token) = demo("optional").await;
    emu.script(PLUGIN, Fault::ForeignAppid, 1);
    let answer = send(&emu, PLUGIN, &token, &secured(&keys, PLUGIN, list(), now(&emu))).await;
    assert_eq!(answer.header("Wechatmp-Appid"), Some(FOREIGN_APPID));
    assert!(answer.verifies(&keys, PLUGIN, "Wechatmp-Serial", "Wechatmp-Signature"), "signed as the foreign app");
    let opened = answer.decrypt(&keys, PLUGIN).unwrap();
    assert_eq!((opened["_appid"].as_str(), opened["errcode"].as_i64()), (Some(FOREIGN_APPID), Some(0)));
    // As our own appid, neither the signature nor the envelope checks out.
    let ours = signed_bytes(&keys.urlpath(PLUGIN), DEMO_APPID, answer.timestamp(), answer.body.as_bytes());
    assert!(!keys.certs[CURRENT_SN].verifies(&ours, answer.header("Wechatmp-Signature").unwrap()));
}

#[tokio::test]
async fn a_stale_timestamp_answer_verifies_and_decrypts_but_is_over_300_seconds_old() {
    let (emu, keys, token) = demo("optional").await;
    emu.script(PLUGIN, Fault::StaleTimestamp, 1);
    let answer = send(&emu, PLUGIN, &token, &secured(&keys, PLUGIN, list(), now(&emu))).await;
    assert!(now(&emu) - answer.timestamp() >= 301, "{} vs {}", answer.timestamp(), now(&emu));
    assert_eq!(answer.open(&keys, PLUGIN)["errcode"], 0, "verifies, decrypts, stamped consistently");
}

#[tokio::test]
async fn the_spoiling_faults_leave_plain_answers_alone_and_are_scriptable_through_the_control_endpoint() {
    let (emu, keys, token) = demo("optional").await;
    emu.script(PLUGIN, Fault::TamperedEnvelope, 1);
    assert_eq!(send_plain(&emu, PLUGIN, &token, list()).await.plain()["errcode"], 0);
    assert_eq!(emu.requests().last().unwrap().fault, Some(Fault::TamperedEnvelope), "met, and logged");

    let order = json!({"path": PLUGIN, "fault": {"kind": "stale_timestamp"}});
    let url = format!("{}/__emulator/faults", emu.base_url());
    assert_eq!(client().post(url).body(order.to_string()).send().await.unwrap().status(), 200);
    let answer = send(&emu, PLUGIN, &token, &secured(&keys, PLUGIN, list(), now(&emu))).await;
    assert!(now(&emu) - answer.timestamp() >= 301);
    for (fault, kind) in [
        (Fault::TamperedEnvelope, "tampered_envelope"),
        (Fault::UnknownCertificate, "unknown_certificate"),
        (Fault::ForeignAppid, "foreign_appid"),
        (Fault::StaleTimestamp, "stale_timestamp"),
    ] {
        assert_eq!(serde_json::to_value(&fault).unwrap(), json!({"kind": kind}));
    }
}

fn open_push(p: &PlatformPush) -> Push {
    let crypt = MsgCrypt::new(DEMO_COMPONENT_TOKEN, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID).unwrap();
    let (sig, ts, nonce) =
        (p.query_param("msg_signature").unwrap(), p.query_param("timestamp").unwrap(), p.query_param("nonce").unwrap());
    push::open(&[&crypt], &Signed { msg_signature: &sig, timestamp: &ts, nonce: &nonce }, &p.body).unwrap()
}

/// An authorizer token of the demo mini program, minted through the demo platform (ticket, code, query_auth).
async fn authorizer_token(emu: &Emulator) -> String {
    let c = DEMO_COMPONENT_APPID;
    emu.push_ticket(c);
    let body = json!({"component_appid": c, "component_appsecret": DEMO_COMPONENT_SECRET,
        "component_verify_ticket": emu.current_ticket(c).unwrap()});
    let post = |path: String, body: Value| async move {
        let answer = client().post(format!("{}{path}", emu.base_url())).body(body.to_string()).send().await.unwrap();
        answer.json::<Value>().await.unwrap()
    };
    let answer = post("/cgi-bin/component/api_component_token".into(), body).await;
    let ctoken = answer["component_access_token"].as_str().unwrap().to_owned();
    let Push::Authorized { code, .. } = open_push(&emu.authorize(c, DEMO_APPID, &[40])) else { panic!("no code") };
    let query = json!({"component_appid": c, "authorization_code": code});
    let info = post(format!("/cgi-bin/component/api_query_auth?component_access_token={ctoken}"), query).await;
    info["authorization_info"]["authorizer_access_token"].as_str().unwrap_or_else(|| panic!("{info}")).to_owned()
}

#[tokio::test]
async fn an_authorizer_token_speaks_with_the_platforms_appid_and_keys() {
    let emu = Emulator::start().unwrap();
    emu.set_api_security_enforcement(DEMO_COMPONENT_APPID, "required");
    let keys = Keys::of(&emu, DEMO_COMPONENT_APPID);
    let token = authorizer_token(&emu).await;
    let update = json!({"action": "update", "plugin_appid": CHAT, "user_version": "3.1.0"});
    let answer = send(&emu, PLUGIN, &token, &secured(&keys, PLUGIN, update.clone(), now(&emu))).await;
    assert_eq!(answer.open(&keys, PLUGIN), json!({"errcode": 0, "errmsg": "ok"}));
    let chat = emu.world().applications.into_iter().find(|a| a.plugin == CHAT && a.applicant == DEMO_APPID).unwrap();
    assert_eq!(chat.user_version.as_deref(), Some("3.1.0"));
    // The platform's `required` holds its authorizers' plain calls; the mini program's own switch does not matter.
    assert_layer_error(&send_plain(&emu, PLUGIN, &token, update).await, 40233, "missing Wechatmp-Appid");
    // A shortcut authorizer token stands outside any platform: any platform may speak for it.
    let shortcut = emu.authorizer_token(DEMO_APPID);
    let answer = send(&emu, PLUGIN, &shortcut, &secured(&keys, PLUGIN, list(), now(&emu))).await;
    assert_eq!(answer.open(&keys, PLUGIN)["errcode"], 0);
}

#[tokio::test]
async fn an_authorizer_token_with_the_mini_programs_appid_gets_40237() {
    let emu = Emulator::start().unwrap();
    emu.set_api_security_enforcement(DEMO_COMPONENT_APPID, "optional");
    emu.set_api_security_enforcement(DEMO_APPID, "optional");
    let token = authorizer_token(&emu).await;
    let mini_program = Keys::of(&emu, DEMO_APPID);
    let request = secured(&mini_program, PLUGIN, list(), now(&emu));
    assert_layer_error(&send(&emu, PLUGIN, &token, &request).await, 40237, "invalid Wechatmp-Appid match request");
    let shortcut = emu.authorizer_token(DEMO_APPID);
    assert_layer_error(&send(&emu, PLUGIN, &shortcut, &request).await, 40237, "invalid Wechatmp-Appid match request");
}
