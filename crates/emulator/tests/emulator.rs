//! The WeChat emulator over real HTTP on loopback: plugin state machine, token semantics, protocol errors, faults,
//! the request log and the control endpoint.
//!
//! Moved from the function's `tests/emulator.rs` when the emulator became a crate of its own; names unchanged.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wechat_emulator::{Emulator, Fault, Status, World, DEMO_APPID, DEMO_PLUGIN, DEMO_SECRET, OVERLAP_SECS};

mod rollout;

const BUYER1: &str = "wxbuyer000000001";
const BUYER2: &str = "wxbuyer000000002";
const BUYER3: &str = "wxbuyer000000003";
const BUYER4: &str = "wxbuyer000000004";
const BUYER5: &str = "wxbuyer000000005";
const SHOP: &str = "wxpluginshop0001";
const CHAT: &str = "wxpluginchat0001";
const PAY: &str = "wxpluginpay00001";
const LIVE: &str = "wxpluginlive0001";
const FORM: &str = "wxpluginform0001";
const CLOSED: &str = "wxpluginclosed01";

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

fn secret_of(emu: &Emulator, appid: &str) -> String {
    emu.world().account(appid).unwrap().secret.clone()
}

async fn post_raw(url: &str, body: &str) -> reqwest::Response {
    client().post(url).body(body.to_owned()).send().await.unwrap()
}

async fn post(url: &str, body: Value) -> Value {
    post_raw(url, &body.to_string()).await.json().await.unwrap()
}

async fn stable(emu: &Emulator, appid: &str, force_refresh: bool) -> Value {
    let secret = secret_of(emu, appid);
    let body = json!({"grant_type":"client_credential","appid":appid,"secret":secret,"force_refresh":force_refresh});
    post(&format!("{}/cgi-bin/stable_token", emu.base_url()), body).await
}

async fn classic(emu: &Emulator, appid: &str) -> Value {
    let url = format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={}",
        emu.base_url(),
        secret_of(emu, appid)
    );
    client().get(url).send().await.unwrap().json().await.unwrap()
}

async fn token(emu: &Emulator, appid: &str) -> String {
    let answer = stable(emu, appid, false).await;
    answer["access_token"].as_str().unwrap_or_else(|| panic!("no token: {answer}")).to_owned()
}

async fn call(emu: &Emulator, path: &str, token: &str, body: Value) -> Value {
    post(&format!("{}{path}?access_token={token}", emu.base_url()), body).await
}

/// A plugin call made with a fresh stable token of `appid`.
async fn as_app(emu: &Emulator, appid: &str, body: Value) -> Value {
    let path = if body["action"].as_str().unwrap().starts_with("dev_") { "/wxa/devplugin" } else { "/wxa/plugin" };
    let t = token(emu, appid).await;
    call(emu, path, &t, body).await
}

fn errcode(answer: &Value) -> i64 {
    answer["errcode"].as_i64().unwrap_or_else(|| panic!("no errcode in {answer}"))
}

fn assert_code(answer: &Value, code: i64) {
    assert_eq!(errcode(answer), code, "{answer}");
    let msg = answer["errmsg"].as_str().unwrap();
    if code != 0 {
        assert!(msg.contains(" rid: "), "errmsg without rid: {msg}");
    } else {
        assert_eq!(msg, "ok");
    }
}

fn list_status(list: &Value, plugin: &str) -> Option<u64> {
    list["plugin_list"].as_array().unwrap().iter().find(|p| p["appid"] == plugin).map(|p| p["status"].as_u64().unwrap())
}

// ---------------------------------------------------------------- the two-sided flow and the state machine

#[tokio::test]
async fn apply_then_owner_agrees_then_list_shows_approved() {
    let emu = Emulator::start().unwrap();
    assert_code(&as_app(&emu, BUYER1, json!({"action":"unbind","plugin_appid":DEMO_PLUGIN})).await, 89243);
    // Buyer 3 was refused; it applies again and becomes pending.
    let applied =
        as_app(&emu, BUYER3, json!({"action":"apply","plugin_appid":DEMO_PLUGIN,"reason":"second try"})).await;
    assert_code(&applied, 0);
    let list = as_app(&emu, BUYER3, json!({"action":"list"})).await;
    assert_eq!(list_status(&list, DEMO_PLUGIN), Some(1));

    let owners_view = as_app(&emu, DEMO_APPID, json!({"action":"dev_apply_list","page":1,"num":10})).await;
    let item = owners_view["apply_list"].as_array().unwrap().iter().find(|a| a["appid"] == BUYER3).unwrap().clone();
    assert_eq!(item["status"], 1);
    assert_eq!(item["reason"], "second try");
    assert_eq!(item["nickname"], "Book Club");
    assert!(item["create_time"].is_string());
    assert_eq!(item["categories"][0]["first"], "教育");

    assert_code(&as_app(&emu, DEMO_APPID, json!({"action":"dev_agree","appid":BUYER3})).await, 0);
    let list = as_app(&emu, BUYER3, json!({"action":"list"})).await;
    assert_eq!(list_status(&list, DEMO_PLUGIN), Some(2));
    assert_eq!(emu.status(DEMO_PLUGIN, BUYER3), Some(Status::Approved));
}

#[tokio::test]
async fn apply_refusals_carry_their_codes() {
    let emu = Emulator::start().unwrap();
    let apply = |p: &str| json!({"action":"apply","plugin_appid":p});
    assert_code(&as_app(&emu, DEMO_APPID, apply("wxnosuchplugin01")).await, 89239);
    assert_code(&as_app(&emu, DEMO_APPID, apply(DEMO_APPID)).await, 89239);
    assert_code(&as_app(&emu, DEMO_APPID, apply(CLOSED)).await, 89236);
    assert_code(&as_app(&emu, DEMO_APPID, apply(CHAT)).await, 89237);
    assert_code(&as_app(&emu, DEMO_APPID, apply(PAY)).await, 89237);
    assert_code(&as_app(&emu, DEMO_APPID, apply(SHOP)).await, 0);
    assert_eq!(emu.status(SHOP, DEMO_APPID), Some(Status::Pending));
    assert_code(&as_app(&emu, DEMO_APPID, apply(SHOP)).await, 89237);
    // Demo now has chat (approved), pay and shop (pending): a limit of 3 refuses the next.
    emu.edit_world(|w| w.settings.plugin_limit = 3);
    assert_code(&as_app(&emu, DEMO_APPID, apply(LIVE)).await, 89238);
    emu.edit_world(|w| w.settings.plugin_limit = 4);
    assert_code(&as_app(&emu, DEMO_APPID, apply(LIVE)).await, 0);
    assert_eq!(emu.status(LIVE, DEMO_APPID), Some(Status::Pending));
    // Missing or mistyped fields.
    assert_code(&as_app(&emu, DEMO_APPID, json!({"action":"apply"})).await, 47001);
    assert_code(&as_app(&emu, DEMO_APPID, json!({"action":"apply","plugin_app_id":SHOP})).await, 47001);
    assert_code(&as_app(&emu, DEMO_APPID, json!({"action":"apply","plugin_appid":FORM,"reason":7})).await, 47001);
    assert_code(&as_app(&emu, DEMO_APPID, json!({"action":"fly"})).await, 47001);
    let t = token(&emu, DEMO_APPID).await;
    assert_code(&call(&emu, "/wxa/plugin", &t, json!({"plugin_appid":SHOP})).await, 47001);
    assert_code(&call(&emu, "/wxa/plugin", &t, json!({"action":["apply"]})).await, 47001);
}

#[tokio::test]
async fn unbind_removes_only_added_non_pending_plugins() {
    let emu = Emulator::start().unwrap();
    let unbind = |p: &str| json!({"action":"unbind","plugin_appid":p});
    assert_code(&as_app(&emu, DEMO_APPID, unbind(PAY)).await, 89243);
    assert_code(&as_app(&emu, DEMO_APPID, unbind(SHOP)).await, 89244);
    for plugin in [CHAT, LIVE, FORM] {
        assert_code(&as_app(&emu, DEMO_APPID, unbind(plugin)).await, 0);
        assert_eq!(emu.status(plugin, DEMO_APPID), None);
        assert_code(&as_app(&emu, DEMO_APPID, unbind(plugin)).await, 89244);
    }
    let list = as_app(&emu, DEMO_APPID, json!({"action":"list"})).await;
    assert_eq!(list["plugin_list"].as_array().unwrap().len(), 1);
    assert_eq!(list["apply_list"], json!([]), "the undocumented empty apply_list is there");
}

#[tokio::test]
async fn owner_decisions_follow_the_state_machine() {
    let emu = Emulator::start().unwrap();
    let dev = |action: &str, appid: &str| json!({"action":action,"appid":appid});
    // Only pending can be agreed or refused.
    for applicant in [BUYER2, BUYER3, BUYER4] {
        assert_code(&as_app(&emu, DEMO_APPID, dev("dev_agree", applicant)).await, 89240);
        assert_code(&as_app(&emu, DEMO_APPID, dev("dev_refuse", applicant)).await, 89240);
    }
    // Only refused or timed out can be deleted.
    for applicant in [BUYER1, BUYER2] {
        assert_code(&as_app(&emu, DEMO_APPID, dev("dev_delete", applicant)).await, 89241);
    }
    // Unknown applicants, and no applicant at all.
    for action in ["dev_agree", "dev_refuse", "dev_delete"] {
        assert_code(&as_app(&emu, DEMO_APPID, dev(action, "wxstranger000001")).await, 89242);
        assert_code(&as_app(&emu, DEMO_APPID, json!({ "action": action })).await, 89242);
    }
    // Refuse with a reason: the applicant sees status 3 and the reason.
    let refuse = json!({"action":"dev_refuse","appid":BUYER1,"reason":"not your category"});
    assert_code(&as_app(&emu, DEMO_APPID, refuse).await, 0);
    let list = as_app(&emu, BUYER1, json!({"action":"list"})).await;
    assert_eq!(list_status(&list, DEMO_PLUGIN), Some(3));
    assert_eq!(list["plugin_list"][0]["reason"], "not your category");
    assert_code(&as_app(&emu, DEMO_APPID, dev("dev_agree", BUYER1)).await, 89240);
    // Refused and timed-out applications can be deleted, once.
    for applicant in [BUYER1, BUYER3, BUYER4] {
        assert_code(&as_app(&emu, DEMO_APPID, dev("dev_delete", applicant)).await, 0);
        assert_eq!(emu.status(DEMO_PLUGIN, applicant), None);
        assert_code(&as_app(&emu, DEMO_APPID, dev("dev_delete", applicant)).await, 89242);
    }
}

#[tokio::test]
async fn pending_applications_time_out_on_the_virtual_clock() {
    let emu = Emulator::start().unwrap();
    assert_code(&as_app(&emu, DEMO_APPID, json!({"action":"apply","plugin_appid":SHOP})).await, 0);
    emu.advance(Duration::from_secs(7 * 86_400 - 60));
    assert_eq!(emu.status(SHOP, DEMO_APPID), Some(Status::Pending));
    emu.advance(Duration::from_secs(120));
    let list = as_app(&emu, DEMO_APPID, json!({"action":"list"})).await;
    assert_eq!(list_status(&list, SHOP), Some(4));
    assert_eq!(list_status(&list, PAY), Some(4), "the older pending one timed out too");
    let shop_token = token(&emu, SHOP).await;
    let owners_view =
        call(&emu, "/wxa/devplugin", &shop_token, json!({"action":"dev_apply_list","page":1,"num":5})).await;
    assert_eq!(owners_view["apply_list"][0]["status"], 4);
    assert_code(
        &call(&emu, "/wxa/devplugin", &shop_token, json!({"action":"dev_agree","appid":DEMO_APPID})).await,
        89240,
    );
    assert_code(&call(&emu, "/wxa/devplugin", &shop_token, json!({"action":"dev_delete","appid":DEMO_APPID})).await, 0);
}

#[tokio::test]
async fn quick_update_needs_an_authorizer_token() {
    let emu = Emulator::start().unwrap();
    let update = json!({"action":"update","plugin_appid":CHAT,"user_version":"3.1.0"});
    assert_code(&as_app(&emu, DEMO_APPID, update).await, 89256);
}

#[tokio::test]
async fn dev_apply_list_pages_newest_first_and_checks_its_arguments() {
    let emu = Emulator::start().unwrap();
    let page = |p: Value, n: Value| json!({"action":"dev_apply_list","page":p,"num":n});
    let first = as_app(&emu, DEMO_APPID, page(json!(1), json!(3))).await;
    let appids: Vec<&str> =
        first["apply_list"].as_array().unwrap().iter().map(|a| a["appid"].as_str().unwrap()).collect();
    assert_eq!(appids, [BUYER1, BUYER5, BUYER2]);
    let second = as_app(&emu, DEMO_APPID, page(json!(2), json!(3))).await;
    let appids: Vec<&str> =
        second["apply_list"].as_array().unwrap().iter().map(|a| a["appid"].as_str().unwrap()).collect();
    assert_eq!(appids, [BUYER3, BUYER4]);
    let beyond = as_app(&emu, DEMO_APPID, page(json!(9), json!(3))).await;
    assert_code(&beyond, 0);
    assert_eq!(beyond["apply_list"], json!([]));
    for (p, n) in [(json!(0), json!(3)), (json!(1), json!(0)), (json!("1"), json!(3)), (json!(1), Value::Null)] {
        assert_code(&as_app(&emu, DEMO_APPID, page(p, n)).await, 47001);
    }
}

#[tokio::test]
async fn devplugin_takes_the_plugins_own_token_and_refuses_ambiguous_owners() {
    let emu = Emulator::start().unwrap();
    let list = json!({"action":"dev_apply_list","page":1,"num":10});
    let via_plugin = as_app(&emu, DEMO_PLUGIN, list.clone()).await;
    let via_owner = as_app(&emu, DEMO_APPID, list.clone()).await;
    assert_code(&via_plugin, 0);
    assert_eq!(via_plugin["apply_list"].as_array().unwrap().len(), via_owner["apply_list"].as_array().unwrap().len());
    assert_code(&as_app(&emu, "wxvendor00000001", list.clone()).await, 48001);
    assert_code(&as_app(&emu, BUYER1, list).await, 48001);
    let chat = as_app(&emu, CHAT, json!({"action":"dev_apply_list","page":1,"num":10})).await;
    assert_eq!(chat["apply_list"][0]["appid"], DEMO_APPID);
    // An action sent to the wrong path is not served there.
    assert_code(&as_app(&emu, DEMO_APPID, json!({"action":"list","page":1})).await, 0);
    let t = token(&emu, DEMO_APPID).await;
    assert_code(&call(&emu, "/wxa/devplugin", &t, json!({"action":"list"})).await, 47001);
    assert_code(&call(&emu, "/wxa/plugin", &t, json!({"action":"dev_agree","appid":BUYER1})).await, 47001);
}

// ---------------------------------------------------------------- tokens

#[tokio::test]
async fn stable_token_is_shared_until_five_minutes_before_expiry_with_an_overlap() {
    let emu = Emulator::start().unwrap();
    let first = stable(&emu, DEMO_APPID, false).await;
    assert_eq!(first["expires_in"], 7200);
    let t1 = first["access_token"].as_str().unwrap().to_owned();
    emu.advance(Duration::from_secs(3600));
    let again = stable(&emu, DEMO_APPID, false).await;
    assert_eq!(again["access_token"], t1.as_str());
    let left = again["expires_in"].as_i64().unwrap();
    assert!((3595..=3600).contains(&left), "{left}");
    emu.advance(Duration::from_secs(3600 - OVERLAP_SECS as u64 + 10));
    let renewed = stable(&emu, DEMO_APPID, false).await;
    let t2 = renewed["access_token"].as_str().unwrap().to_owned();
    assert_ne!(t1, t2);
    assert_eq!(renewed["expires_in"], 7200);
    let list = json!({"action":"list"});
    assert_code(&call(&emu, "/wxa/plugin", &t1, list.clone()).await, 0);
    assert_code(&call(&emu, "/wxa/plugin", &t2, list.clone()).await, 0);
    emu.advance(Duration::from_secs(OVERLAP_SECS as u64));
    assert_code(&call(&emu, "/wxa/plugin", &t1, list.clone()).await, 42001);
    assert_code(&call(&emu, "/wxa/plugin", &t2, list.clone()).await, 0);
    emu.advance(Duration::from_secs(7200));
    assert_code(&call(&emu, "/wxa/plugin", &t2, list).await, 42001);
}

#[tokio::test]
async fn classic_token_is_new_on_every_call_and_the_previous_dies_five_minutes_later() {
    let emu = Emulator::start().unwrap();
    let a = classic(&emu, DEMO_APPID).await;
    assert_eq!(a["expires_in"], 7200);
    let a = a["access_token"].as_str().unwrap().to_owned();
    let b = classic(&emu, DEMO_APPID).await["access_token"].as_str().unwrap().to_owned();
    assert_ne!(a, b);
    let list = json!({"action":"list"});
    assert_code(&call(&emu, "/wxa/plugin", &a, list.clone()).await, 0);
    emu.advance(Duration::from_secs(OVERLAP_SECS as u64 + 1));
    assert_code(&call(&emu, "/wxa/plugin", &a, list.clone()).await, 40001);
    assert_code(&call(&emu, "/wxa/plugin", &b, list.clone()).await, 0);
    // The stable endpoint's tokens are independent of the classic one's.
    let s = token(&emu, DEMO_APPID).await;
    let c = classic(&emu, DEMO_APPID).await["access_token"].as_str().unwrap().to_owned();
    emu.advance(Duration::from_secs(OVERLAP_SECS as u64 + 1));
    let _ = classic(&emu, DEMO_APPID).await;
    assert_code(&call(&emu, "/wxa/plugin", &s, list.clone()).await, 0);
    assert_code(&call(&emu, "/wxa/plugin", &b, list.clone()).await, 40001);
    assert_code(&call(&emu, "/wxa/plugin", &c, list.clone()).await, 0);
    // GET only.
    let url = format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid={DEMO_APPID}&secret={DEMO_SECRET}",
        emu.base_url()
    );
    assert_code(&post_raw(&url, "").await.json().await.unwrap(), 43001);
}

#[tokio::test]
async fn force_refresh_invalidates_the_previous_token_and_obeys_its_limits() {
    let emu = Emulator::start().unwrap();
    let old = token(&emu, DEMO_APPID).await;
    let fresh = stable(&emu, DEMO_APPID, true).await;
    let fresh = fresh["access_token"].as_str().unwrap().to_owned();
    assert_ne!(old, fresh);
    assert_code(&call(&emu, "/wxa/plugin", &old, json!({"action":"list"})).await, 40001);
    assert_code(&call(&emu, "/wxa/plugin", &fresh, json!({"action":"list"})).await, 0);
    assert_eq!(token(&emu, DEMO_APPID).await, fresh, "normal mode now returns the forced token");
    // 30 s apart.
    assert_code(&stable(&emu, DEMO_APPID, true).await, 45011);
    emu.advance(Duration::from_secs(30));
    assert!(stable(&emu, DEMO_APPID, true).await["access_token"].is_string());
    // 20 a day: 2 used so far.
    for _ in 0..18 {
        emu.advance(Duration::from_secs(31));
        assert!(stable(&emu, DEMO_APPID, true).await["access_token"].is_string());
    }
    emu.advance(Duration::from_secs(31));
    assert_code(&stable(&emu, DEMO_APPID, true).await, 45009);
    emu.advance(Duration::from_secs(86_400));
    assert!(stable(&emu, DEMO_APPID, true).await["access_token"].is_string());
}

#[tokio::test]
async fn token_endpoints_refuse_bad_credentials_with_wechats_codes() {
    let emu = Emulator::start().unwrap();
    let url = format!("{}/cgi-bin/stable_token", emu.base_url());
    let cases = [
        (json!({"grant_type":"client_credential","appid":"wxnobody00000001","secret":"x"}), 40013),
        (json!({"grant_type":"client_credential","appid":DEMO_APPID,"secret":"wrong"}), 40125),
        (json!({"grant_type":"client_credential","secret":DEMO_SECRET}), 41002),
        (json!({"grant_type":"client_credential","appid":DEMO_APPID}), 41004),
        (json!({"grant_type":"password","appid":DEMO_APPID,"secret":DEMO_SECRET}), 40002),
        (
            json!({"grant_type":"client_credential","appid":DEMO_APPID,"secret":DEMO_SECRET,"force_refresh":"yes"}),
            47001,
        ),
    ];
    for (body, code) in cases {
        assert_code(&post(&url, body).await, code);
    }
    assert_code(&post_raw(&url, "").await.json().await.unwrap(), 44002);
    assert_code(&post_raw(&url, "{not json").await.json().await.unwrap(), 47001);
    let get: Value = client().get(&url).send().await.unwrap().json().await.unwrap();
    assert_code(&get, 43002);
    let base = emu.base_url();
    let classic_url = |q: &str| format!("{base}/cgi-bin/token?{q}");
    let bad: Value = client()
        .get(classic_url(&format!("grant_type=client_credential&appid={DEMO_APPID}&secret=nope")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_code(&bad, 40125);
    let missing: Value =
        client().get(classic_url("grant_type=client_credential")).send().await.unwrap().json().await.unwrap();
    assert_code(&missing, 41002);

    emu.edit_world(|w| w.accounts.iter_mut().find(|a| a.appid == DEMO_APPID).unwrap().ip_whitelist_blocks = true);
    assert_code(&stable(&emu, DEMO_APPID, false).await, 40164);
    assert_code(&classic(&emu, DEMO_APPID).await, 40164);
    emu.edit_world(|w| {
        let a = w.accounts.iter_mut().find(|a| a.appid == DEMO_APPID).unwrap();
        a.ip_whitelist_blocks = false;
        a.secret_frozen = true;
    });
    assert_code(&stable(&emu, DEMO_APPID, false).await, 40243);
    assert_eq!(emu.issued_tokens().len(), 0, "no refused call issued a token");
}

#[tokio::test]
async fn plugin_calls_check_the_token() {
    let emu = Emulator::start().unwrap();
    let base = emu.base_url();
    let list = json!({"action":"list"});
    assert_code(&post(&format!("{base}/wxa/plugin"), list.clone()).await, 41001);
    assert_code(&post(&format!("{base}/wxa/plugin?access_token="), list.clone()).await, 41001);
    assert_code(&call(&emu, "/wxa/plugin", "short", list.clone()).await, 40014);
    assert_code(&call(&emu, "/wxa/plugin", "has%20a%20space%20in%20it%20ok", list.clone()).await, 40014);
    assert_code(&call(&emu, "/wxa/devplugin", "81_wellformedbutnotissuedbywechat", list.clone()).await, 40001);
    let t = token(&emu, DEMO_APPID).await;
    assert_eq!(emu.invalidate_tokens(DEMO_APPID), 1);
    assert_code(&call(&emu, "/wxa/plugin", &t, list.clone()).await, 40001);
    let t2 = token(&emu, DEMO_APPID).await;
    assert_ne!(t, t2, "an invalidated token is not handed out again");
    assert_code(&call(&emu, "/wxa/plugin", &t2, list).await, 0);
}

// ---------------------------------------------------------------- protocol errors

#[tokio::test]
async fn protocol_errors_answer_http_200_with_wechats_json() {
    let emu = Emulator::start().unwrap();
    let t = token(&emu, DEMO_APPID).await;
    let url = format!("{}/wxa/plugin?access_token={t}", emu.base_url());
    for (body, code) in [("", 44002), ("{\"action\":", 47001), ("[1,2]", 47001), ("\"list\"", 47001)] {
        let reply = post_raw(&url, body).await;
        assert_eq!(reply.status(), 200);
        assert!(reply.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        assert_code(&reply.json().await.unwrap(), code);
    }
    let get = client().get(&url).send().await.unwrap();
    assert_eq!(get.status(), 200);
    assert_code(&get.json().await.unwrap(), 43002);
    let unknown = post_raw(&format!("{}/wxa/nosuchthing?access_token={t}", emu.base_url()), "{}").await;
    assert_eq!(unknown.status(), 404);
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn scripted_errcodes_answer_the_next_n_calls_without_touching_state() {
    let emu = Emulator::start().unwrap();
    let t = token(&emu, DEMO_APPID).await;
    emu.script("/wxa/plugin", Fault::Errcode { errcode: -1, errmsg: None }, 2);
    let unbind = json!({"action":"unbind","plugin_appid":CHAT});
    assert_code(&call(&emu, "/wxa/plugin", &t, unbind.clone()).await, -1);
    assert_eq!(emu.status(CHAT, DEMO_APPID), Some(Status::Approved));
    assert_code(&call(&emu, "/wxa/plugin", &t, unbind.clone()).await, -1);
    assert_code(&call(&emu, "/wxa/plugin", &t, unbind).await, 0);
    for code in [45009, 45011, 40001] {
        emu.script("/wxa/devplugin", Fault::Errcode { errcode: code, errmsg: None }, 1);
        assert_code(&call(&emu, "/wxa/devplugin", &t, json!({"action":"dev_apply_list","page":1,"num":1})).await, code);
    }
    emu.script("/wxa/plugin", Fault::Errcode { errcode: 89999, errmsg: Some("custom words".into()) }, 1);
    let custom = call(&emu, "/wxa/plugin", &t, json!({"action":"list"})).await;
    assert!(custom["errmsg"].as_str().unwrap().starts_with("custom words rid: "), "{custom}");
    // The token endpoint can be scripted too, and "*" scripts any path.
    emu.script("*", Fault::Errcode { errcode: -1, errmsg: None }, 1);
    assert_code(&stable(&emu, DEMO_APPID, false).await, -1);
    assert_eq!(token(&emu, DEMO_APPID).await, t);
}

#[tokio::test]
async fn scripted_http_failures_drops_and_bad_bodies() {
    let emu = Emulator::start().unwrap();
    let t = token(&emu, DEMO_APPID).await;
    let url = format!("{}/wxa/plugin?access_token={t}", emu.base_url());
    let list = "{\"action\":\"list\"}";

    emu.script("/wxa/plugin", Fault::Status { status: 502 }, 1);
    assert_eq!(post_raw(&url, list).await.status(), 502);

    emu.script("/wxa/plugin", Fault::NonJson { body: None }, 1);
    let reply = post_raw(&url, list).await;
    assert_eq!(reply.status(), 200);
    assert!(serde_json::from_str::<Value>(&reply.text().await.unwrap()).is_err());

    emu.script("/wxa/plugin", Fault::TextPlain, 1);
    let reply = post_raw(&url, list).await;
    assert_eq!(reply.headers()["content-type"], "text/plain");
    assert_code(&serde_json::from_str(&reply.text().await.unwrap()).unwrap(), 0);

    emu.script("/wxa/plugin", Fault::Drop, 1);
    let dropped = client().post(&url).body(list).send().await;
    assert!(dropped.is_err(), "a dropped connection gives no answer");

    emu.script("/wxa/plugin", Fault::Delay { ms: 300 }, 1);
    let started = Instant::now();
    let slow: Value = post_raw(&url, list).await.json().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_code(&slow, 0);

    emu.script("/wxa/plugin", Fault::Delay { ms: 2_000 }, 1);
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap();
    assert!(impatient.post(&url).body(list).send().await.unwrap_err().is_timeout());

    assert_code(&post_raw(&url, list).await.json().await.unwrap(), 0);
    let faults: Vec<Option<Fault>> =
        emu.requests().into_iter().filter(|r| r.path == "/wxa/plugin").map(|r| r.fault).collect();
    assert_eq!(faults.iter().filter(|f| f.is_some()).count(), 6);
    assert_eq!(faults.last().unwrap(), &None);
}

// ---------------------------------------------------------------- the log, the counters and the control endpoint

#[tokio::test]
async fn the_request_log_and_counters_record_every_call() {
    let emu = Emulator::start().unwrap();
    let t = token(&emu, DEMO_APPID).await;
    assert_code(&call(&emu, "/wxa/plugin", &t, json!({"action":"apply","plugin_appid":SHOP,"reason":"why"})).await, 0);
    assert_eq!(emu.count("/cgi-bin/stable_token"), 1);
    assert_eq!(emu.token_calls(), 1);
    assert_eq!(emu.count("/wxa/plugin"), 1);
    let log = emu.requests();
    assert_eq!(log.len(), 2);
    let applied = &log[1];
    assert_eq!((applied.method.as_str(), applied.path.as_str()), ("POST", "/wxa/plugin"));
    assert_eq!(applied.query_param("access_token").as_deref(), Some(t.as_str()));
    assert_eq!(applied.json_body().unwrap(), json!({"action":"apply","plugin_appid":SHOP,"reason":"why"}));
    assert_eq!(emu.issued_tokens(), vec![t]);
}

#[tokio::test]
async fn the_control_endpoint_scripts_and_inspects_over_http() {
    let emu = Emulator::start().unwrap();
    let base = emu.base_url().to_owned();
    let scripted = post(
        &format!("{base}/__emulator/faults"),
        json!({"path":"/wxa/plugin","times":1,"fault":{"kind":"errcode","errcode":45009}}),
    )
    .await;
    assert_eq!(scripted["scripted"], 1);
    assert_code(&as_app(&emu, DEMO_APPID, json!({"action":"list"})).await, 45009);
    let counters: Value =
        client().get(format!("{base}/__emulator/counters")).send().await.unwrap().json().await.unwrap();
    assert_eq!(counters, json!({"/cgi-bin/stable_token":1,"/wxa/plugin":1}));
    let requests: Value =
        client().get(format!("{base}/__emulator/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(requests[1]["fault"]["errcode"], 45009);
    let before = emu.now();
    let moved = post(&format!("{base}/__emulator/clock"), json!({"seconds": 3600})).await;
    assert!(moved["now"].as_i64().unwrap() >= before + 3600);
    let t = token(&emu, DEMO_APPID).await;
    assert_eq!(post(&format!("{base}/__emulator/invalidate"), json!({"appid":DEMO_APPID})).await["invalidated"], 1);
    assert_code(&call(&emu, "/wxa/plugin", &t, json!({"action":"list"})).await, 40001);
    let state: Value = client().get(format!("{base}/__emulator/state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["tokens_issued"], 1);
    assert!(state["world"]["accounts"].as_array().unwrap().len() > 5);
    assert_eq!(
        post(&format!("{base}/__emulator/clock"), json!({"minutes": 1})).await["error"]
            .as_str()
            .map(|e| e.contains("unknown field")),
        Some(true)
    );
    post(&format!("{base}/__emulator/faults"), json!({"path":"*","fault":{"kind":"drop"},"times":3})).await;
    assert!(client().delete(format!("{base}/__emulator/faults")).send().await.unwrap().status().is_success());
    assert_code(&as_app(&emu, DEMO_APPID, json!({"action":"list"})).await, 0);
    post(&format!("{base}/__emulator/reset"), json!({})).await;
    assert_eq!(emu.token_calls(), 0);
    assert!(emu.issued_tokens().is_empty());
}

/// The machine's own non-loopback address, found without sending a packet.
fn non_loopback_ip() -> std::net::IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    probe.connect("192.0.2.1:9").expect("a route off loopback is needed to check the control endpoint's guard");
    let ip = probe.local_addr().unwrap().ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "no non-loopback address ({ip})");
    ip
}

#[tokio::test]
async fn the_control_endpoint_is_hidden_from_other_hosts() {
    let emu = Emulator::start_with(World::builtin(), "0.0.0.0:0".parse().unwrap()).unwrap();
    let outside = format!("http://{}:{}", non_loopback_ip(), emu.addr().port());
    let hidden = client().get(format!("{outside}/__emulator/state")).send().await.unwrap();
    assert_eq!(hidden.status(), 404);
    let scripted = client()
        .post(format!("{outside}/__emulator/faults"))
        .body(r#"{"path":"*","fault":{"kind":"drop"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(scripted.status(), 404);
    // The WeChat endpoints answer there, unscripted; loopback still reaches the control endpoint.
    let answer: Value =
        client().post(format!("{outside}/wxa/plugin")).body("{}").send().await.unwrap().json().await.unwrap();
    assert_code(&answer, 41001);
    let inside = client().get(format!("{}/__emulator/state", emu.base_url())).send().await.unwrap();
    assert_eq!(inside.status(), 200);
}

#[test]
fn a_state_file_round_trips_and_bad_ones_are_refused_clearly() {
    let dir = testkit::temp::TempPath::dir("state");
    let good = dir.path().join("good.json");
    std::fs::write(&good, serde_json::to_string(&World::builtin()).unwrap()).unwrap();
    let world = Emulator::load_world(&good).unwrap();
    assert_eq!(world.accounts.len(), World::builtin().accounts.len());
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"accounts":[],"applications":[{"plugin":"p","applicant":"a","status":9,"create_time":1}]}"#,
    )
    .unwrap();
    let e = Emulator::load_world(&bad).unwrap_err().to_string();
    assert!(e.contains("status must be 1 to 4"), "{e}");
    let orphan: World = serde_json::from_str(
        r#"{"accounts":[],"applications":[{"plugin":"p","applicant":"a","status":1,"create_time":1}]}"#,
    )
    .unwrap();
    let e = Emulator::start_with(orphan, "127.0.0.1:0".parse().unwrap()).err().unwrap().to_string();
    assert!(e.contains("unknown plugin p"), "{e}");
}

// ---------------------------------------------------------------- more transitions, quotas and faults on changes

#[tokio::test]
async fn quick_update_with_an_authorizer_token_checks_plugin_version_and_gray_release() {
    let emu = Emulator::start().unwrap();
    let t = emu.authorizer_token(DEMO_APPID);
    let update = |plugin: &str, version: &str| json!({"action":"update","plugin_appid":plugin,"user_version":version});
    assert_code(&call(&emu, "/wxa/plugin", &t, update(PAY, "1.0.0")).await, 89244);
    assert_code(&call(&emu, "/wxa/plugin", &t, update(SHOP, "1.0.0")).await, 89244);
    assert_code(&call(&emu, "/wxa/plugin", &t, update(CHAT, "9.9.9")).await, 89257);
    emu.edit_world(|w| w.accounts.iter_mut().find(|a| a.appid == DEMO_APPID).unwrap().gray_release = true);
    assert_code(&call(&emu, "/wxa/plugin", &t, update(CHAT, "3.1.0")).await, 89258);
    emu.edit_world(|w| w.accounts.iter_mut().find(|a| a.appid == DEMO_APPID).unwrap().gray_release = false);
    assert_code(&call(&emu, "/wxa/plugin", &t, update(CHAT, "3.1.0")).await, 0);
    let chat = emu.world().applications.into_iter().find(|a| a.plugin == CHAT && a.applicant == DEMO_APPID).unwrap();
    assert_eq!(chat.user_version.as_deref(), Some("3.1.0"));
    assert_code(&call(&emu, "/wxa/plugin", &t, json!({"action":"update","plugin_appid":CHAT})).await, 47001);
}

#[tokio::test]
async fn timed_out_and_unbound_plugins_can_be_applied_for_again() {
    let emu = Emulator::start().unwrap();
    let apply = |p: &str| json!({"action":"apply","plugin_appid":p});
    assert_code(&as_app(&emu, DEMO_APPID, apply(FORM)).await, 0);
    assert_eq!(emu.status(FORM, DEMO_APPID), Some(Status::Pending));
    assert_code(&as_app(&emu, DEMO_APPID, json!({"action":"unbind","plugin_appid":CHAT})).await, 0);
    assert_code(&as_app(&emu, DEMO_APPID, apply(CHAT)).await, 0);
    assert_eq!(emu.status(CHAT, DEMO_APPID), Some(Status::Pending));
    // A refusal without a reason is fine; the list then shows an empty reason.
    let chat_token = token(&emu, CHAT).await;
    assert_code(&call(&emu, "/wxa/devplugin", &chat_token, json!({"action":"dev_refuse","appid":DEMO_APPID})).await, 0);
    let list = as_app(&emu, DEMO_APPID, json!({"action":"list"})).await;
    let chat = list["plugin_list"].as_array().unwrap().iter().find(|p| p["appid"] == CHAT).unwrap().clone();
    assert_eq!((chat["status"].as_u64(), chat["reason"].as_str()), (Some(3), Some("")));
}

#[tokio::test]
async fn token_endpoint_quotas_answer_45011_and_45009() {
    let emu = Emulator::start().unwrap();
    emu.edit_world(|w| {
        w.settings.stable_minute_quota = 3;
        w.settings.stable_daily_quota = 5;
        w.settings.classic_daily_quota = 2;
    });
    for _ in 0..3 {
        assert!(stable(&emu, DEMO_APPID, false).await["access_token"].is_string());
    }
    assert_code(&stable(&emu, DEMO_APPID, false).await, 45011);
    emu.advance(Duration::from_secs(60));
    assert!(stable(&emu, DEMO_APPID, false).await["access_token"].is_string());
    assert_code(&stable(&emu, DEMO_APPID, false).await, 45009);
    assert!(stable(&emu, BUYER1, false).await["access_token"].is_string(), "quotas are per appid");
    emu.advance(Duration::from_secs(86_400));
    assert!(stable(&emu, DEMO_APPID, false).await["access_token"].is_string());
    for _ in 0..2 {
        assert!(classic(&emu, DEMO_APPID).await["access_token"].is_string());
    }
    assert_code(&classic(&emu, DEMO_APPID).await, 45009);
}

#[tokio::test]
async fn force_refresh_also_kills_a_token_still_in_its_overlap() {
    let emu = Emulator::start().unwrap();
    let first = token(&emu, DEMO_APPID).await;
    emu.advance(Duration::from_secs(7200 - OVERLAP_SECS as u64 + 5));
    let second = token(&emu, DEMO_APPID).await;
    assert_ne!(first, second);
    assert_code(&call(&emu, "/wxa/plugin", &first, json!({"action":"list"})).await, 0);
    assert!(stable(&emu, DEMO_APPID, true).await["access_token"].is_string());
    assert_code(&call(&emu, "/wxa/plugin", &first, json!({"action":"list"})).await, 40001);
    assert_code(&call(&emu, "/wxa/plugin", &second, json!({"action":"list"})).await, 40001);
}

#[tokio::test]
async fn devplugin_checks_the_token_like_plugin() {
    let emu = Emulator::start().unwrap();
    let body = json!({"action":"dev_apply_list","page":1,"num":1});
    assert_code(&post(&format!("{}/wxa/devplugin", emu.base_url()), body.clone()).await, 41001);
    let t = token(&emu, DEMO_APPID).await;
    emu.advance(Duration::from_secs(7200));
    assert_code(&call(&emu, "/wxa/devplugin", &t, body).await, 42001);
}

#[tokio::test]
async fn failing_faults_leave_state_alone_and_a_delayed_change_still_happens() {
    let emu = Emulator::start().unwrap();
    let t = token(&emu, DEMO_APPID).await;
    let url = format!("{}/wxa/plugin?access_token={t}", emu.base_url());
    let unbind = json!({"action":"unbind","plugin_appid":CHAT}).to_string();
    for fault in [Fault::Status { status: 503 }, Fault::NonJson { body: Some("oops".into()) }, Fault::Drop] {
        emu.script("/wxa/plugin", fault.clone(), 1);
        let _ = client().post(&url).body(unbind.clone()).send().await;
        assert_eq!(emu.status(CHAT, DEMO_APPID), Some(Status::Approved), "{fault:?} changed state");
    }
    // A client that gives up during a delay does not stop the change: exactly why changes are not retried.
    emu.script("/wxa/plugin", Fault::Delay { ms: 500 }, 1);
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().unwrap();
    assert!(impatient.post(&url).body(unbind).send().await.unwrap_err().is_timeout());
    let deadline = Instant::now() + Duration::from_secs(5);
    while emu.status(CHAT, DEMO_APPID).is_some() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(emu.status(CHAT, DEMO_APPID), None, "the delayed unbind happened after the client left");
}

#[tokio::test]
async fn the_clock_only_moves_forward() {
    let emu = Emulator::start().unwrap();
    let reply =
        client().post(format!("{}/__emulator/clock", emu.base_url())).body(r#"{"seconds":-100}"#).send().await.unwrap();
    assert_eq!(reply.status(), 400);
    assert!(reply.text().await.unwrap().contains("only moves forward"));
}

#[tokio::test]
async fn a_dual_stack_emulator_serves_its_control_endpoint_to_ipv4_loopback() {
    let emu = Emulator::start_with(World::builtin(), "[::]:0".parse().unwrap()).unwrap();
    let state = client().get(format!("http://127.0.0.1:{}/__emulator/state", emu.addr().port())).send().await.unwrap();
    assert_eq!(state.status(), 200);
}
