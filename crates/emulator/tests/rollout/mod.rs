//! A third-party platform serving thousands of mini programs: generated worlds, paging the authorizer list, faults
//! drawn at rates, the plugin quota and the changes counted.

mod faults;
mod paging;
mod quota;

use serde_json::{json, Value};
use wechat_emulator::{Emulator, World, DEMO_COMPONENT_APPID, DEMO_COMPONENT_SECRET, DEMO_PLUGIN};

use super::post;

/// The built-in world and `count` mini programs authorising the demo platform, drawn from `seed`.
fn start(count: usize, seed: u64) -> Emulator {
    let world = World::builtin().with_authorizers(DEMO_COMPONENT_APPID, count, seed);
    Emulator::start_with(world, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// The generated mini programs, in the order they were made.
fn generated(emu: &Emulator) -> Vec<String> {
    emu.world().authorizations.into_iter().map(|a| a.authorizer).collect()
}

/// A component token of the demo platform, through a freshly pushed ticket.
async fn component_token(emu: &Emulator) -> String {
    emu.push_ticket(DEMO_COMPONENT_APPID);
    let ticket = emu.current_ticket(DEMO_COMPONENT_APPID).unwrap();
    let body = json!({"component_appid": DEMO_COMPONENT_APPID, "component_appsecret": DEMO_COMPONENT_SECRET,
        "component_verify_ticket": ticket});
    let answer = post(&format!("{}/cgi-bin/component/api_component_token", emu.base_url()), body).await;
    answer["component_access_token"].as_str().unwrap_or_else(|| panic!("no component token: {answer}")).to_owned()
}

/// `POST /cgi-bin/component/<endpoint>` as the demo platform.
async fn component_call(emu: &Emulator, token: &str, endpoint: &str, mut body: Value) -> Value {
    body["component_appid"] = json!(DEMO_COMPONENT_APPID);
    post(&format!("{}/cgi-bin/component/{endpoint}?component_access_token={token}", emu.base_url()), body).await
}

fn apply() -> Value {
    json!({"action":"apply","plugin_appid":DEMO_PLUGIN})
}

/// The first generated program that has not applied for the demo plugin.
fn fresh_program(emu: &Emulator, skip: usize) -> String {
    let world = emu.world();
    let applied = |appid: &str| world.applications.iter().any(|a| a.applicant == appid);
    generated(emu).into_iter().filter(|p| !applied(p)).nth(skip).unwrap()
}
