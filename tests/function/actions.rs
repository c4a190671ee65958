//! Every action through the real Lambda binary against the emulator: the request WeChat receives and the result the
//! caller gets.

use crate::support::setup::Setup;
use serde_json::{json, Value};
use wechat_emulator::{Status, DEMO_APPID, DEMO_PLUGIN};

/// The last plugin call the emulator received: path, body, and whether it carried a token the emulator issued.
fn last_call(s: &Setup) -> (String, Value) {
    let log = s.emu.requests();
    let call = log.iter().rev().find(|r| r.path.starts_with("/wxa/")).expect("a plugin call");
    assert_eq!(call.method, "POST");
    assert_eq!(call.content_type.as_deref(), Some("application/json"));
    let token = call.query_param("access_token").expect("the token rides in the query");
    assert!(s.emu.issued_tokens().contains(&token), "the token is one the emulator issued");
    assert_eq!(call.query.matches('=').count(), 1, "nothing but the token in the query: {}", call.query);
    (call.path.clone(), call.json_body().unwrap())
}

#[test]
fn list_returns_the_plugin_list_in_camel_case_with_unknown_fields_kept() {
    let s = Setup::new(&[]);
    let result = s.succeeds(json!({"action":"list"}));
    assert_eq!(last_call(&s), ("/wxa/plugin".into(), json!({"action":"list"})));
    assert_eq!(result["errMsg"], "openapi.pluginManager.getPluginList:ok");
    assert_eq!(result["errCode"], 0);
    assert_eq!(result["applyList"], json!([]), "the undocumented top-level field is kept");
    let first = &result["pluginList"][0];
    assert_eq!(
        first,
        &json!({"appid":"wxpluginchat0001","status":2,"nickname":"Chat Widget","headimgurl":"http://wx.qlogo.cn/mmhead/chat/0","reason":""})
    );
    let keys: Vec<&str> = result.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["pluginList", "applyList", "errMsg", "errCode"]);
}

#[test]
fn apply_sends_plugin_appid_and_reason_and_the_application_is_pending() {
    let s = Setup::new(&[]);
    let result = s.succeeds(json!({"action":"apply","pluginAppid":"wxpluginshop0001","reason":"storefront"}));
    assert_eq!(result, json!({"errMsg":"openapi.pluginManager.applyPlugin:ok","errCode":0}));
    assert_eq!(
        last_call(&s),
        ("/wxa/plugin".into(), json!({"action":"apply","plugin_appid":"wxpluginshop0001","reason":"storefront"}))
    );
    assert_eq!(s.emu.status("wxpluginshop0001", DEMO_APPID), Some(Status::Pending));
}

#[test]
fn unbind_sends_plugin_appid_and_removes_the_plugin() {
    let s = Setup::new(&[]);
    let result = s.succeeds(json!({"action":"unbind","plugin_appid":"wxpluginchat0001"}));
    assert_eq!(result, json!({"errMsg":"openapi.pluginManager.unbindPlugin:ok","errCode":0}));
    assert_eq!(last_call(&s), ("/wxa/plugin".into(), json!({"action":"unbind","plugin_appid":"wxpluginchat0001"})));
    assert_eq!(s.emu.status("wxpluginchat0001", DEMO_APPID), None);
}

#[test]
fn update_with_a_plain_token_fails_as_wechat_does_and_succeeds_with_an_authorizer_token() {
    let s = Setup::new(&[]);
    let event = json!({"action":"update","pluginAppid":"wxpluginchat0001","userVersion":"3.1.0"});
    let (kind, code, msg) = s.fails(event.clone());
    assert_eq!((kind.as_str(), code), ("WxApiError", 89256));
    assert!(msg.starts_with("openapi.pluginManager.applyPlugin:fail no component info rid: "), "{msg}");
    assert_eq!(
        last_call(&s),
        ("/wxa/plugin".into(), json!({"action":"update","plugin_appid":"wxpluginchat0001","user_version":"3.1.0"}))
    );

    // A token handed in as it is (WX_ACCESS_TOKEN), here an authorizer token, is what quick update needs.
    let authorizer = s.emu.authorizer_token(DEMO_APPID);
    let api = crate::support::runtime_api::RuntimeApi::start();
    let _f = crate::support::function::Function::spawn(
        &api,
        &[("WX_ACCESS_TOKEN", &authorizer), ("WX_API_BASE", s.emu.base_url())],
    );
    let result = api.invoke(&event, crate::support::setup::TIMEOUT).response();
    assert_eq!(result, json!({"errMsg":"openapi.pluginManager.applyPlugin:ok","errCode":0}));
    let chat =
        s.emu.world().applications.into_iter().find(|a| a.plugin == "wxpluginchat0001" && a.applicant == DEMO_APPID);
    assert_eq!(chat.unwrap().user_version.as_deref(), Some("3.1.0"));
}

#[test]
fn dev_apply_list_pages_the_applications_with_camel_case_fields() {
    let s = Setup::new(&[]);
    let result = s.succeeds(json!({"action":"dev_apply_list","page":1,"num":2}));
    assert_eq!(last_call(&s), ("/wxa/devplugin".into(), json!({"action":"dev_apply_list","page":1,"num":2})));
    assert_eq!(result["errMsg"], "openapi.pluginManager.getPluginDevApplyList:ok");
    let list = result["applyList"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let first = &list[0];
    assert_eq!(first["appid"], "wxbuyer000000001");
    assert_eq!(first["createTime"], "1763600000");
    assert_eq!(first["categories"], json!([{"first":"餐饮","second":"烘焙"}]));
    assert!(first["applyUrl"].as_str().unwrap().starts_with("https://"));
    assert_eq!(first["reason"], "We want maps in our store locator");
    assert!(first.get("create_time").is_none() && first.get("apply_url").is_none());
}

#[test]
fn owner_decisions_send_the_applicant_and_change_its_status() {
    let s = Setup::new(&[]);
    let ok = json!({"errMsg":"openapi.pluginManager.setDevPluginApplyStatus:ok","errCode":0});
    assert_eq!(s.succeeds(json!({"action":"dev_agree","appid":"wxbuyer000000001"})), ok);
    assert_eq!(last_call(&s), ("/wxa/devplugin".into(), json!({"action":"dev_agree","appid":"wxbuyer000000001"})));
    assert_eq!(s.emu.status(DEMO_PLUGIN, "wxbuyer000000001"), Some(Status::Approved));

    assert_eq!(s.succeeds(json!({"action":"dev_refuse","appid":"wxbuyer000000005","reason":"not now"})), ok);
    assert_eq!(
        last_call(&s),
        ("/wxa/devplugin".into(), json!({"action":"dev_refuse","appid":"wxbuyer000000005","reason":"not now"}))
    );
    assert_eq!(s.emu.status(DEMO_PLUGIN, "wxbuyer000000005"), Some(Status::Refused));

    assert_eq!(s.succeeds(json!({"action":"dev_delete","appid":"wxbuyer000000005"})), ok);
    assert_eq!(last_call(&s), ("/wxa/devplugin".into(), json!({"action":"dev_delete","appid":"wxbuyer000000005"})));
    assert_eq!(s.emu.status(DEMO_PLUGIN, "wxbuyer000000005"), None);
}
