//! A running function wired to a fresh emulator, as most function tests need it.

use std::time::Duration;

use serde_json::Value;
use wechat_emulator::Emulator;

use super::demo::demo_env;
use super::function::Function;
use super::runtime_api::{Outcome, RuntimeApi};

/// The Lambda timeout tests give an invocation unless they test the deadline.
pub const TIMEOUT: Duration = Duration::from_secs(5);

pub struct Setup {
    pub emu: Emulator,
    pub api: RuntimeApi,
    pub function: Function,
}

impl Setup {
    /// The demo mini program's function on a fresh emulator; `extra` adds to or overrides its environment.
    pub fn new(extra: &[(&str, &str)]) -> Setup {
        Setup::with_emulator(Emulator::start().unwrap(), extra)
    }

    /// The demo mini program's function on `emu` (set up as the test needs it); `extra` adds or overrides.
    pub fn with_emulator(emu: Emulator, extra: &[(&str, &str)]) -> Setup {
        let api = RuntimeApi::start();
        let demo = demo_env(&emu);
        let mut env: Vec<(&str, &str)> = demo.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend_from_slice(extra);
        let function = Function::spawn(&api, &env);
        Setup { emu, api, function }
    }

    pub fn invoke(&self, event: Value) -> Outcome {
        self.api.invoke(&event, TIMEOUT)
    }

    /// The error's kind and its `{errCode, errMsg}`.
    #[track_caller]
    pub fn fails(&self, event: Value) -> (String, i64, String) {
        let outcome = self.invoke(event);
        let (kind, message) = outcome.error();
        let body: Value =
            serde_json::from_str(&message).unwrap_or_else(|e| panic!("errorMessage is not JSON ({e}): {message}"));
        (kind, body["errCode"].as_i64().unwrap(), body["errMsg"].as_str().unwrap().to_owned())
    }

    #[track_caller]
    pub fn succeeds(&self, event: Value) -> Value {
        self.invoke(event).response()
    }

    /// Plugin-endpoint calls the emulator received.
    pub fn plugin_calls(&self) -> u64 {
        self.emu.count("/wxa/plugin") + self.emu.count("/wxa/devplugin")
    }
}
