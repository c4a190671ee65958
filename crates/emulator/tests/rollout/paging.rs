//! Generated worlds and `api_get_authorizer_list` over thousands of authorisations.

use std::collections::HashSet;

use serde_json::json;
use wechat_emulator::{Application, Status, World, DEMO_COMPONENT_APPID, DEMO_PLUGIN};

use super::{component_call, component_token, generated, start};
use crate::assert_code;

#[test]
fn a_seed_gives_the_same_world_and_every_plugin_state_of_the_mix() {
    let make = |seed| World::builtin().with_authorizers(DEMO_COMPONENT_APPID, 1_000, seed);
    let (a, b, other) = (make(7), make(7), make(8));
    let appids = |w: &World| w.authorizations.iter().map(|a| a.authorizer.clone()).collect::<Vec<_>>();
    assert_eq!(appids(&a), appids(&b));
    assert_eq!(serde_json::to_value(&a).unwrap(), serde_json::to_value(&b).unwrap());
    assert!(appids(&a).iter().all(|id| !appids(&other).contains(id)), "another seed, other programs");
    a.validate().unwrap();
    for id in appids(&a) {
        assert!(id.len() == 18 && id.starts_with("wx") && id[2..].bytes().all(|c| c.is_ascii_alphanumeric()), "{id}");
    }
    let generated: HashSet<String> = appids(&a).into_iter().collect();
    let mine: Vec<_> = a.applications.iter().filter(|x| generated.contains(&x.applicant)).collect();
    assert!(mine.iter().all(|x| x.plugin == DEMO_PLUGIN));
    let share = |keep: fn(&Application) -> bool| mine.iter().filter(|x| keep(x)).count();
    let updatable = share(|x| x.status == Status::Approved && x.user_version.as_deref() == Some("1.0.0"));
    let approved = share(|x| x.status == Status::Approved && x.user_version.is_none());
    let (pending, refused) = (share(|x| x.status == Status::Pending), share(|x| x.status == Status::Refused));
    // 25 %, 15 %, 10 %, 10 % and 40 % without one, of 1,000.
    for (n, expected) in [(updatable, 250), (approved, 150), (pending, 100), (refused, 100), (1_000 - mine.len(), 400)]
    {
        assert!(n.abs_diff(expected) < 60, "{n} where about {expected} were drawn");
    }
}

#[test]
fn a_state_file_can_list_authorisations_and_bad_ones_are_refused() {
    let world: World = serde_json::from_value(json!({
        "accounts": [], "authorizations": [{"component": "wxnoplatform0001", "authorizer": "wxdemo0000000001"}]
    }))
    .unwrap();
    assert_eq!(world.authorizations[0].func_ids, vec![40], "plugin management when absent");
    assert!(world.validate().unwrap_err().to_string().contains("unknown platform wxnoplatform0001"));
    let mut world = World::builtin().with_authorizers(DEMO_COMPONENT_APPID, 2, 1);
    world.authorizations[1].authorizer = "wxplugin00000001".into();
    assert!(world.validate().unwrap_err().to_string().contains("not a mini program"));
    world.authorizations[1] = world.authorizations[0].clone();
    assert!(world.validate().unwrap_err().to_string().contains("twice"));
}

#[tokio::test]
async fn two_thousand_programs_page_by_500_each_once_oldest_first() {
    let emu = start(2_000, 11);
    let token = component_token(&emu).await;
    let mut listed = Vec::new();
    for offset in (0..=2_000).step_by(500) {
        let page =
            component_call(&emu, &token, "api_get_authorizer_list", json!({"offset": offset, "count": 500})).await;
        assert_eq!(page["total_count"], 2_000, "{offset}");
        let list = page["list"].as_array().unwrap();
        assert_eq!(list.len(), if offset == 2_000 { 0 } else { 500 });
        listed.extend(list.iter().cloned());
    }
    let appids: Vec<String> = listed.iter().map(|a| a["authorizer_appid"].as_str().unwrap().to_owned()).collect();
    let mut expected = generated(&emu);
    expected.sort();
    assert_eq!(appids, expected, "every program once, the same auth time ordered by appid");
    let sample = &listed[1_234];
    let appid = sample["authorizer_appid"].as_str().unwrap();
    assert_eq!(sample["refresh_token"].as_str(), emu.refresh_token(DEMO_COMPONENT_APPID, appid).as_deref());
    assert_eq!(sample["auth_time"].as_i64(), World::builtin().now, "granted at the clock's start");

    // A withdrawal leaves the list; a re-authorisation comes last, as the newest.
    emu.revoke(DEMO_COMPONENT_APPID, &appids[0]);
    emu.advance(std::time::Duration::from_secs(60));
    emu.authorize(DEMO_COMPONENT_APPID, &appids[1], &[40]);
    let last = component_call(&emu, &token, "api_get_authorizer_list", json!({"offset": 1_997, "count": 500})).await;
    assert_eq!(last["total_count"], 1_999);
    let last: Vec<&str> =
        last["list"].as_array().unwrap().iter().map(|a| a["authorizer_appid"].as_str().unwrap()).collect();
    assert_eq!(last, [appids[1_999].as_str(), appids[1].as_str()]);
    let first = component_call(&emu, &token, "api_get_authorizer_list", json!({"offset": 0, "count": 1})).await;
    assert_eq!(first["list"][0]["authorizer_appid"], appids[2]);
    let refused = component_call(&emu, &token, "api_get_authorizer_list", json!({"offset": 0, "count": 501})).await;
    assert_code(&refused, 47001);
}

#[tokio::test]
async fn a_generated_program_reaches_its_plugins_through_the_platform_until_it_withdraws() {
    let emu = start(50, 3);
    let token = component_token(&emu).await;
    let program = generated(&emu)[17].clone();
    let refresh = emu.refresh_token(DEMO_COMPONENT_APPID, &program).unwrap();
    let body = json!({"authorizer_appid": program, "authorizer_refresh_token": refresh});
    let minted = component_call(&emu, &token, "api_authorizer_token", body.clone()).await;
    let access = minted["authorizer_access_token"].as_str().unwrap().to_owned();
    assert_code(&crate::call(&emu, "/wxa/plugin", &access, json!({"action":"list"})).await, 0);
    emu.revoke(DEMO_COMPONENT_APPID, &program);
    assert_code(&crate::call(&emu, "/wxa/plugin", &access, json!({"action":"list"})).await, 40001);
    assert_code(&component_call(&emu, &token, "api_authorizer_token", body).await, 61003);
}
