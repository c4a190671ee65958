//! The plugin endpoints' daily quota (45009) and the changes counted per mini program.

use std::time::Duration;

use serde_json::json;
use wechat_emulator::{Changes, Status, DEMO_APPID, DEMO_PLUGIN};

use super::{apply, fresh_program, generated, start};
use crate::{as_app, assert_code, call};

#[tokio::test]
async fn past_the_daily_quota_plugin_calls_answer_45009_and_change_nothing() {
    let emu = start(20, 2);
    let (program, neighbour) = (fresh_program(&emu, 0), fresh_program(&emu, 1));
    let token = emu.authorizer_token(&program);
    emu.set_plugin_daily_quota(Some(3));
    for _ in 0..3 {
        assert_code(&call(&emu, "/wxa/plugin", &token, json!({"action":"list"})).await, 0);
    }
    assert_code(&call(&emu, "/wxa/plugin", &token, apply()).await, 45009);
    assert_eq!(emu.status(DEMO_PLUGIN, &program), None, "refused by the quota, not applied");
    let other = emu.authorizer_token(&neighbour);
    assert_code(&call(&emu, "/wxa/plugin", &other, apply()).await, 0);
    let dev = json!({"action":"dev_apply_list","page":1,"num":1});
    assert_code(&as_app(&emu, DEMO_APPID, dev).await, 0);

    // A day later (whatever the hour, 24 h cross one 00:00 in Beijing) the quota is whole again.
    emu.advance(Duration::from_secs(86_400));
    let token = emu.authorizer_token(&program);
    assert_code(&call(&emu, "/wxa/plugin", &token, apply()).await, 0);
    assert_eq!(emu.status(DEMO_PLUGIN, &program), Some(Status::Pending));
    emu.set_plugin_daily_quota(None);
    for _ in 0..5 {
        assert_code(&call(&emu, "/wxa/plugin", &token, json!({"action":"list"})).await, 0);
    }
}

#[tokio::test]
async fn only_calls_that_change_a_program_count_as_applied() {
    let emu = start(200, 4);
    let world = emu.world();
    let updatable = generated(&emu)
        .into_iter()
        .find(|p| world.applications.iter().any(|a| &a.applicant == p && a.user_version.as_deref() == Some("1.0.0")))
        .unwrap();
    let token = emu.authorizer_token(&updatable);
    let update = json!({"action":"update","plugin_appid":DEMO_PLUGIN,"user_version":"2.2.46"});
    assert_code(&call(&emu, "/wxa/plugin", &token, update.clone()).await, 0);
    assert_eq!(emu.changes(&updatable), Changes { applied: 1, unchanged: 0 });
    assert_code(&call(&emu, "/wxa/plugin", &token, update).await, 0);
    assert_eq!(emu.changes(&updatable), Changes { applied: 1, unchanged: 1 }, "the same version again");
    let unbind = json!({"action":"unbind","plugin_appid":DEMO_PLUGIN});
    assert_code(&call(&emu, "/wxa/plugin", &token, unbind.clone()).await, 0);
    assert_code(&call(&emu, "/wxa/plugin", &token, unbind).await, 89244);
    assert_code(&call(&emu, "/wxa/plugin", &token, json!({"action":"list"})).await, 0);
    assert_eq!(emu.changes(&updatable), Changes { applied: 2, unchanged: 1 });
    assert_eq!(emu.all_changes().into_keys().collect::<Vec<_>>(), [updatable.as_str()]);
    let url = format!("{}/__emulator/changes", emu.base_url());
    let listed: serde_json::Value = crate::client().get(url).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed, json!({ updatable.as_str(): {"applied": 2, "unchanged": 1} }));
    emu.reset();
    assert_eq!(emu.changes(&updatable), Changes::default(), "a reset forgets them");
}
