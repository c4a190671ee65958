//! The emulator as WeChat's open platform, over real HTTP on loopback: the ticket → component token → authorisation
//! code → authorizer token chain, every error code of it, the pushes (decrypted and verified with the project's own
//! WXBizMsgCrypt) and their delivery to a platform's URL.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wechat_emulator::{
    Component, Emulator, PlatformPush, DEMO_APPID, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID, DEMO_COMPONENT_SECRET,
    DEMO_COMPONENT_TOKEN, REFRESH_GRACE_SECS,
};
use wechat_wire::crypt::{self, MsgCrypt};
use wx_plugin_manager::platform::push::{self, Push, Signed};

const C: &str = DEMO_COMPONENT_APPID;
const BUYER1: &str = "wxbuyer000000001";
const BUYER2: &str = "wxbuyer000000002";
const BUYER3: &str = "wxbuyer000000003";
/// The demo mini program's approved plugin that allows a quick update to 3.1.0.
const CHAT: &str = "wxpluginchat0001";
const OTHER: &str = "wxcomponent0000002";

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn post(url: &str, body: Value) -> Value {
    client().post(url).body(body.to_string()).send().await.unwrap().json().await.unwrap()
}

fn url(emu: &Emulator, path: &str) -> String {
    format!("{}{path}", emu.base_url())
}

fn assert_code(answer: &Value, code: i64) {
    assert_eq!(answer["errcode"].as_i64(), Some(code), "{answer}");
    let errmsg = answer["errmsg"].as_str().unwrap();
    assert!(if code == 0 { errmsg == "ok" } else { errmsg.contains(" rid: ") }, "{answer}");
}

fn crypt() -> MsgCrypt {
    MsgCrypt::new(DEMO_COMPONENT_TOKEN, DEMO_COMPONENT_AES_KEY, C).unwrap()
}

fn open(p: &PlatformPush) -> Push {
    let (sig, ts, nonce) =
        (p.query_param("msg_signature").unwrap(), p.query_param("timestamp").unwrap(), p.query_param("nonce").unwrap());
    push::open(&[&crypt()], &Signed { msg_signature: &sig, timestamp: &ts, nonce: &nonce }, &p.body).unwrap()
}

fn code_of(p: &PlatformPush) -> String {
    match open(p) {
        Push::Authorized { code, .. } => code,
        other => panic!("not an authorisation push: {other:?}"),
    }
}

async fn component_token_with(emu: &Emulator, ticket: Value) -> Value {
    let body =
        json!({"component_appid": C, "component_appsecret": DEMO_COMPONENT_SECRET, "component_verify_ticket": ticket});
    post(&url(emu, "/cgi-bin/component/api_component_token"), body).await
}

async fn component_token(emu: &Emulator) -> String {
    emu.push_ticket(C);
    let answer = component_token_with(emu, json!(emu.current_ticket(C).unwrap())).await;
    answer["component_access_token"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned()
}

async fn component_call(emu: &Emulator, endpoint: &str, token: &str, mut body: Value) -> Value {
    body["component_appid"] = json!(C);
    post(&url(emu, &format!("/cgi-bin/component/{endpoint}?component_access_token={token}")), body).await
}

async fn query_auth(emu: &Emulator, token: &str, code: &str) -> Value {
    component_call(emu, "api_query_auth", token, json!({"authorization_code": code})).await
}

async fn refresh(emu: &Emulator, token: &str, authorizer: &str, refresh_token: Value) -> Value {
    let body = json!({"authorizer_appid": authorizer, "authorizer_refresh_token": refresh_token});
    component_call(emu, "api_authorizer_token", token, body).await
}

async fn plugin(emu: &Emulator, token: &str, body: Value) -> Value {
    post(&url(emu, &format!("/wxa/plugin?access_token={token}")), body).await
}

fn quick_update() -> Value {
    json!({"action": "update", "plugin_appid": CHAT, "user_version": "3.1.0"})
}

/// A second platform, so that another platform's ticket can be offered.
fn with_other_component(emu: &Emulator) {
    emu.edit_world(|w| {
        let mut other: Component = w.component(C).unwrap().clone();
        other.appid = OTHER.to_owned();
        w.components.push(other);
    });
}

#[tokio::test]
async fn the_whole_chain_from_ticket_to_quick_update_succeeds() {
    let emu = Emulator::start().unwrap();
    let pushed = emu.push_ticket(C);
    let Push::Ticket { ticket, component_appid, create_time } = open(&pushed) else { panic!("not a ticket") };
    assert_eq!((component_appid.as_str(), create_time), (C, emu.now()));
    assert_eq!(emu.current_ticket(C).as_deref(), Some(ticket.as_str()));
    let answer = component_token_with(&emu, json!(ticket)).await;
    assert_eq!(answer["expires_in"], 7200, "{answer}");
    let ctoken = answer["component_access_token"].as_str().unwrap();

    let code = code_of(&emu.authorize(C, DEMO_APPID, &[17, 40]));
    let info = query_auth(&emu, ctoken, &code).await;
    let info = &info["authorization_info"];
    assert_eq!(info["authorizer_appid"], DEMO_APPID, "{info}");
    assert_eq!(info["expires_in"], 7200);
    assert_eq!(info["func_info"], json!([{"funcscope_category":{"id":17}}, {"funcscope_category":{"id":40}}]));
    let refresh_token = info["authorizer_refresh_token"].as_str().unwrap();
    assert_eq!(emu.refresh_token(C, DEMO_APPID).as_deref(), Some(refresh_token));
    assert_code(&plugin(&emu, info["authorizer_access_token"].as_str().unwrap(), quick_update()).await, 0);

    let refreshed = refresh(&emu, ctoken, DEMO_APPID, json!(refresh_token)).await;
    assert_eq!(refreshed["authorizer_refresh_token"], refresh_token, "refreshing does not change it: {refreshed}");
    assert_eq!(refreshed["expires_in"], 7200);
    assert_code(&plugin(&emu, refreshed["authorizer_access_token"].as_str().unwrap(), quick_update()).await, 0);
    assert_eq!((emu.component_token_calls(), emu.authorizer_token_calls()), (1, 1));
}

#[tokio::test]
async fn the_component_token_endpoint_answers_each_of_its_errors() {
    let emu = Emulator::start().unwrap();
    with_other_component(&emu);
    emu.push_ticket(C);
    let ticket = emu.current_ticket(C).unwrap();
    let endpoint = url(&emu, "/cgi-bin/component/api_component_token");
    let ask = |appid: &str, secret: Value, ticket: Value| json!({"component_appid": appid, "component_appsecret": secret, "component_verify_ticket": ticket});
    let secret = json!(DEMO_COMPONENT_SECRET);
    assert_code(&post(&endpoint, json!({"component_appsecret": DEMO_COMPONENT_SECRET})).await, 40013);
    assert_code(&post(&endpoint, ask(DEMO_APPID, secret.clone(), json!(ticket))).await, 61011);
    assert_code(&post(&endpoint, ask(C, Value::Null, json!(ticket))).await, 41004);
    assert_code(&post(&endpoint, ask(C, json!("wrong"), json!(ticket))).await, 40125);
    assert_code(&post(&endpoint, ask(C, secret.clone(), Value::Null)).await, 61006);
    assert_code(
        &post(&endpoint, json!({"component_appid": C, "component_appsecret": DEMO_COMPONENT_SECRET})).await,
        61006,
    );
    assert_code(&post(&endpoint, ask(C, secret.clone(), json!("ticket@@@forged"))).await, 61006);
    emu.push_ticket(OTHER);
    assert_code(&post(&endpoint, ask(C, secret.clone(), json!(emu.current_ticket(OTHER).unwrap()))).await, 61006);

    // An older ticket still works while it is younger than 12 h, even after newer pushes.
    emu.advance(Duration::from_secs(12 * 3600 - 1));
    emu.push_ticket(C);
    assert!(post(&endpoint, ask(C, secret.clone(), json!(ticket))).await["component_access_token"].is_string());
    emu.advance(Duration::from_secs(1));
    assert_code(&post(&endpoint, ask(C, secret.clone(), json!(ticket))).await, 61005);

    emu.edit_world(|w| w.components[0].ip_whitelist_blocks = true);
    assert_code(&post(&endpoint, ask(C, secret, json!(emu.current_ticket(C).unwrap()))).await, 61004);
}

#[tokio::test]
async fn a_new_component_token_leaves_the_previous_one_alive_until_its_expiry() {
    let emu = Emulator::start().unwrap();
    let first = component_token(&emu).await;
    emu.advance(Duration::from_secs(3600));
    let second = component_token(&emu).await;
    assert_ne!(first, second);
    let list = json!({"offset": 0, "count": 10});
    assert!(component_call(&emu, "api_get_authorizer_list", &first, list.clone()).await["list"].is_array());
    emu.advance(Duration::from_secs(3600));
    assert_code(&component_call(&emu, "api_get_authorizer_list", &first, list.clone()).await, 42001);
    assert!(component_call(&emu, "api_get_authorizer_list", &second, list).await["list"].is_array());
}

#[tokio::test]
async fn component_token_checks_on_the_query_accept_both_names() {
    let emu = Emulator::start().unwrap();
    let token = component_token(&emu).await;
    let list = |query: &str| {
        let target = url(&emu, &format!("/cgi-bin/component/api_get_authorizer_list{query}"));
        async move { post(&target, json!({"component_appid": C, "offset": 0, "count": 1})).await }
    };
    assert_eq!(list(&format!("?access_token={token}")).await["total_count"], 0);
    assert_eq!(list(&format!("?component_access_token={token}")).await["total_count"], 0);
    assert_code(&list("").await, 41001);
    assert_code(&list("?component_access_token=short").await, 40014);
    assert_code(&list("?component_access_token=61_0123456789abcdefghij").await, 40001);
    // A component token is no access token of a mini program.
    assert_code(&plugin(&emu, &token, json!({"action": "list"})).await, 40001);

    // Another platform's token does not speak for this one.
    with_other_component(&emu);
    emu.push_ticket(OTHER);
    let body = json!({"component_appid": OTHER, "component_appsecret": DEMO_COMPONENT_SECRET, "component_verify_ticket": emu.current_ticket(OTHER)});
    let other = post(&url(&emu, "/cgi-bin/component/api_component_token"), body).await;
    assert_code(
        &list(&format!("?component_access_token={}", other["component_access_token"].as_str().unwrap())).await,
        40001,
    );
    let get = client().get(url(&emu, &format!("/cgi-bin/component/api_get_authorizer_list?access_token={token}")));
    assert_code(&get.send().await.unwrap().json().await.unwrap(), 43002);
}

#[tokio::test]
async fn an_authorisation_code_is_single_use_and_expires_after_an_hour() {
    let emu = Emulator::start().unwrap();
    let token = component_token(&emu).await;
    assert_code(&query_auth(&emu, &token, "queryauthcode@@@never").await, 61009);
    let code = code_of(&emu.authorize(C, BUYER1, &[40]));
    assert!(query_auth(&emu, &token, &code).await["authorization_info"].is_object());
    assert_code(&query_auth(&emu, &token, &code).await, 61009);

    let stale = code_of(&emu.authorize(C, BUYER2, &[40]));
    emu.advance(Duration::from_secs(3599));
    let token = component_token(&emu).await;
    let fresh = code_of(&emu.authorize(C, BUYER3, &[40]));
    emu.advance(Duration::from_secs(1));
    assert_code(&query_auth(&emu, &token, &stale).await, 61010);
    assert!(query_auth(&emu, &token, &fresh).await["authorization_info"].is_object());
}

#[tokio::test]
async fn the_authorizer_token_endpoint_refuses_bad_refresh_tokens_and_strangers() {
    let emu = Emulator::start().unwrap();
    let token = component_token(&emu).await;
    emu.authorize(C, BUYER1, &[40]);
    assert_code(&refresh(&emu, &token, BUYER1, Value::Null).await, 61023);
    assert_code(&refresh(&emu, &token, BUYER1, json!("refreshtoken@@@wrong")).await, 61023);
    let missing = json!({"authorizer_appid": BUYER1});
    assert_code(&component_call(&emu, "api_authorizer_token", &token, missing).await, 61023);
    assert_code(&refresh(&emu, &token, BUYER2, json!(emu.refresh_token(C, BUYER1).unwrap())).await, 61003);
}

#[tokio::test]
async fn a_rotated_refresh_token_keeps_working_five_minutes() {
    let emu = Emulator::start().unwrap();
    emu.authorize(C, BUYER1, &[40]);
    let old = emu.refresh_token(C, BUYER1).unwrap();
    let new = emu.rotate_refresh_token(C, BUYER1);
    assert_ne!(old, new);
    let token = component_token(&emu).await;
    let answer = refresh(&emu, &token, BUYER1, json!(old)).await;
    assert_eq!(answer["authorizer_refresh_token"], new.as_str(), "the answer carries the new one: {answer}");
    emu.advance(Duration::from_secs(REFRESH_GRACE_SECS as u64 - 1));
    assert!(refresh(&emu, &token, BUYER1, json!(old)).await["authorizer_access_token"].is_string());
    emu.advance(Duration::from_secs(1));
    assert_code(&refresh(&emu, &token, BUYER1, json!(old)).await, 61023);
    assert!(refresh(&emu, &token, BUYER1, json!(new)).await["authorizer_access_token"].is_string());
}

#[tokio::test]
async fn re_authorisation_replaces_the_refresh_token_and_kills_the_access_tokens() {
    let emu = Emulator::start().unwrap();
    let token = component_token(&emu).await;
    let code = code_of(&emu.authorize(C, DEMO_APPID, &[40]));
    let info = query_auth(&emu, &token, &code).await["authorization_info"].clone();
    let old_refresh = info["authorizer_refresh_token"].clone();
    let again = emu.authorize(C, DEMO_APPID, &[40]);
    assert!(matches!(open(&again), Push::Authorized { updated: true, .. }));
    assert_ne!(emu.refresh_token(C, DEMO_APPID).as_deref(), old_refresh.as_str());
    assert_code(&refresh(&emu, &token, DEMO_APPID, old_refresh).await, 61023);
    assert_code(&plugin(&emu, info["authorizer_access_token"].as_str().unwrap(), quick_update()).await, 40001);
    let info = query_auth(&emu, &token, &code_of(&again)).await;
    assert_code(
        &plugin(&emu, info["authorization_info"]["authorizer_access_token"].as_str().unwrap(), quick_update()).await,
        0,
    );
}

#[tokio::test]
async fn revocation_kills_the_authorisation_and_its_access_tokens() {
    let emu = Emulator::start().unwrap();
    let token = component_token(&emu).await;
    let info = query_auth(&emu, &token, &code_of(&emu.authorize(C, DEMO_APPID, &[40]))).await;
    let access = info["authorization_info"]["authorizer_access_token"].as_str().unwrap().to_owned();
    let refresh_token = emu.refresh_token(C, DEMO_APPID).unwrap();
    let pushed = emu.revoke(C, DEMO_APPID);
    assert_eq!(open(&pushed), Push::Unauthorized { authorizer_appid: DEMO_APPID.to_owned() });
    assert_code(&plugin(&emu, &access, quick_update()).await, 40001);
    assert_code(&refresh(&emu, &token, DEMO_APPID, json!(refresh_token)).await, 61003);
    assert_eq!(emu.refresh_token(C, DEMO_APPID), None);
    // Authorising again starts afresh: `authorized`, not `updateauthorized`.
    assert!(matches!(open(&emu.authorize(C, DEMO_APPID, &[40])), Push::Authorized { updated: false, .. }));
}

#[tokio::test]
async fn plugin_calls_need_permission_set_40() {
    let emu = Emulator::start().unwrap();
    let token = component_token(&emu).await;
    let info = query_auth(&emu, &token, &code_of(&emu.authorize(C, DEMO_APPID, &[17, 18]))).await;
    let access = info["authorization_info"]["authorizer_access_token"].as_str().unwrap().to_owned();
    assert_code(&plugin(&emu, &access, quick_update()).await, 61007);
    assert_code(&plugin(&emu, &access, json!({"action": "list"})).await, 61007);
    let dev = post(
        &url(&emu, &format!("/wxa/devplugin?access_token={access}")),
        json!({"action": "dev_apply_list", "page": 1, "num": 10}),
    )
    .await;
    assert_code(&dev, 61007);
}

#[tokio::test]
async fn the_authorizer_list_pages_live_authorisations_with_their_refresh_tokens() {
    let emu = Emulator::start().unwrap();
    for (i, buyer) in [BUYER1, BUYER2, BUYER3].into_iter().enumerate() {
        emu.authorize(C, buyer, &[40]);
        emu.advance(Duration::from_secs(10 * (i as u64 + 1)));
    }
    emu.revoke(C, BUYER2);
    let token = component_token(&emu).await;
    let list = |offset: i64, count: i64| {
        component_call(&emu, "api_get_authorizer_list", &token, json!({"offset": offset, "count": count}))
    };
    let all = list(0, 500).await;
    assert_eq!(all["total_count"], 2, "{all}");
    assert_eq!(all["list"][0]["authorizer_appid"], BUYER1);
    assert_eq!(all["list"][0]["refresh_token"], emu.refresh_token(C, BUYER1).unwrap().as_str());
    assert!(all["list"][0]["auth_time"].is_i64());
    let second = list(1, 1).await;
    assert_eq!(
        (second["total_count"].clone(), second["list"][0]["authorizer_appid"].clone()),
        (json!(2), json!(BUYER3))
    );
    assert_code(&list(0, 501).await, 47001);
    assert_code(&list(0, 0).await, 47001);
}

#[tokio::test]
async fn start_push_ticket_pushes_a_new_ticket_at_once() {
    let emu = Emulator::start().unwrap();
    let endpoint = url(&emu, "/cgi-bin/component/api_start_push_ticket");
    assert_eq!(emu.current_ticket(C), None);
    let ok = post(&endpoint, json!({"component_appid": C, "component_secret": DEMO_COMPONENT_SECRET})).await;
    assert_eq!(ok, json!({"errcode": 0, "errmsg": "ok"}));
    let first = emu.current_ticket(C).unwrap();
    post(&endpoint, json!({"component_appid": C, "component_secret": DEMO_COMPONENT_SECRET})).await;
    assert_ne!(emu.current_ticket(C).unwrap(), first, "each push carries a new ticket");
    assert_code(&post(&endpoint, json!({"component_appid": C})).await, 41004);
    assert_code(&post(&endpoint, json!({"component_appid": C, "component_secret": "nope"})).await, 40125);
}

#[tokio::test]
async fn a_push_decrypts_to_the_documented_xml_and_its_signatures_verify() {
    let emu = Emulator::start().unwrap();
    let p = emu.push_ticket(C);
    let keys: Vec<&str> = p.query.split('&').map(|kv| kv.split('=').next().unwrap()).collect();
    assert_eq!(keys, ["signature", "timestamp", "nonce", "encrypt_type", "msg_signature"]);
    let (ts, nonce) = (p.query_param("timestamp").unwrap(), p.query_param("nonce").unwrap());
    assert_eq!(ts, emu.now().to_string());
    assert!(!nonce.is_empty() && nonce.bytes().all(|b| b.is_ascii_digit()), "{nonce}");
    assert_eq!(p.query_param("encrypt_type").as_deref(), Some("aes"));
    assert_eq!(p.query_param("signature").unwrap(), crypt::signature(&mut [DEMO_COMPONENT_TOKEN, &ts, &nonce]));

    let prefix = format!("<xml><AppId><![CDATA[{C}]]></AppId><Encrypt><![CDATA[");
    let encrypt = p.body.strip_prefix(&prefix).and_then(|b| b.strip_suffix("]]></Encrypt></xml>")).unwrap();
    let xml = crypt().open(&p.query_param("msg_signature").unwrap(), &ts, &nonce, encrypt).unwrap();
    let ticket = emu.current_ticket(C).unwrap();
    assert_eq!(
        xml,
        format!(
            "<xml><AppId><![CDATA[{C}]]></AppId><CreateTime>{ts}</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[{ticket}]]></ComponentVerifyTicket></xml>"
        )
    );
    assert!(ticket.starts_with("ticket@@@"));

    let authorized = crypt().decrypt(&push_encrypt(&emu.authorize(C, BUYER1, &[40]))).unwrap();
    for field in [
        "AppId",
        "CreateTime",
        "InfoType",
        "AuthorizerAppid",
        "AuthorizationCode",
        "AuthorizationCodeExpiredTime",
        "PreAuthCode",
    ] {
        assert!(authorized.contains(&format!("<{field}>")), "{field} missing from {authorized}");
    }
    assert!(authorized
        .contains(&format!("<AuthorizationCodeExpiredTime>{}</AuthorizationCodeExpiredTime>", emu.now() + 3600)));

    let odd = emu.seal(C, "<xml><InfoType>notify_third_fasteregister</InfoType></xml>");
    assert_eq!(open(&odd), Push::Other { info_type: "notify_third_fasteregister".to_owned() });
}

fn push_encrypt(p: &PlatformPush) -> String {
    let start = p.body.find("<Encrypt><![CDATA[").unwrap() + "<Encrypt><![CDATA[".len();
    p.body[start..].split("]]>").next().unwrap().to_owned()
}

/// A platform's authorisation-event URL: answers `success` and hands each request (target, body) to the test.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, String)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, length) = loop {
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the push ended early");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    break (end + 4, length);
                }
            };
            while buf.len() < head_end + length {
                let n = stream.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let target = head.split_whitespace().nth(1).unwrap().to_owned();
            let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nsuccess")
                .await
                .unwrap();
            let _ = tx.send((target, body));
        }
    });
    (format!("http://{addr}/wechat/events"), rx)
}

async fn within(rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, String)>) -> (String, String) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap()
}

#[tokio::test]
async fn pushes_are_delivered_to_the_push_url() {
    let emu = Emulator::start().unwrap();
    let (push_url, mut received) = receiver().await;
    emu.edit_world(|w| w.components[0].push_url = Some(push_url));
    let pushed = emu.push_ticket(C);
    let (target, body) = within(&mut received).await;
    assert_eq!((target, body), (format!("/wechat/events?{}", pushed.query), pushed.body));

    // The control endpoint delivers too, and answers the push it sent.
    let answer: Value = client()
        .post(url(&emu, "/__emulator/platform/authorize"))
        .body(json!({"component": C, "authorizer": BUYER1}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (target, body) = within(&mut received).await;
    assert_eq!(body, answer["body"].as_str().unwrap());
    assert!(target.ends_with(answer["query"].as_str().unwrap()));
    let control_push = PlatformPush { query: answer["query"].as_str().unwrap().into(), body };
    assert!(matches!(open(&control_push), Push::Authorized { updated: false, .. }));
}

#[tokio::test]
async fn the_control_endpoint_scripts_the_platform_and_reset_forgets_it() {
    let emu = Emulator::start().unwrap();
    let control = |path: &str, body: Value| {
        let target = url(&emu, &format!("/__emulator/platform/{path}"));
        async move { client().post(target).body(body.to_string()).send().await.unwrap() }
    };
    let pushed: PlatformPush = control("push_ticket", json!({"component": C})).await.json().await.unwrap();
    assert!(matches!(open(&pushed), Push::Ticket { .. }));
    control("authorize", json!({"component": C, "authorizer": BUYER1, "func_ids": [40]})).await;
    assert!(emu.refresh_token(C, BUYER1).is_some());
    let revoked: PlatformPush =
        control("revoke", json!({"component": C, "authorizer": BUYER1})).await.json().await.unwrap();
    assert!(matches!(open(&revoked), Push::Unauthorized { .. }));
    assert_eq!(control("push_ticket", json!({"component": DEMO_APPID})).await.status(), 400);
    assert_eq!(control("authorize", json!({"component": C, "authorizer": CHAT})).await.status(), 400);
    assert_eq!(control("authorize", json!({"component": C})).await.status(), 400);

    emu.authorize(C, BUYER2, &[40]);
    client().post(url(&emu, "/__emulator/reset")).send().await.unwrap();
    assert_eq!((emu.current_ticket(C), emu.refresh_token(C, BUYER2)), (None, None));
}

#[tokio::test]
async fn the_classic_token_endpoints_refuse_a_platform_appid() {
    let emu = Emulator::start().unwrap();
    let body = json!({"grant_type": "client_credential", "appid": C, "secret": DEMO_COMPONENT_SECRET});
    assert_code(&post(&url(&emu, "/cgi-bin/stable_token"), body).await, 61024);
}
