//! The emulator's demo mini program as the function's configuration: the variables a cold start reads (for a spawned
//! function's environment) and the `Config` they make (for an in-process `App`). The emulator knows nothing of the
//! function's variables; the tests and the benchmarks take them from here.

use wechat_emulator::{Emulator, DEMO_APPID, DEMO_SECRET};
use wx_plugin_manager::Config;

/// `WX_APPID`, `WX_SECRET` and `WX_API_BASE` of the demo mini program against `emu`.
pub fn demo_env(emu: &Emulator) -> Vec<(&'static str, String)> {
    vec![
        ("WX_APPID", DEMO_APPID.to_owned()),
        ("WX_SECRET", DEMO_SECRET.to_owned()),
        ("WX_API_BASE", emu.base_url().to_owned()),
    ]
}

/// The configuration a cold start reads from [`demo_env`]; `extra` adds to or overrides it.
pub fn demo_config(emu: &Emulator, extra: &[(&str, &str)]) -> Config {
    let env = demo_env(emu);
    Config::from_lookup(|name| {
        let extra = extra.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        extra.or_else(|| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone()))
    })
    .unwrap()
}
