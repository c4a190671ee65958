//! The handles a rollout over thousands of mini programs needs: faults drawn at rates, the plugin quota, and what
//! each program's calls actually changed.

use std::collections::BTreeMap;

use crate::rates::{FaultDraws, FaultRates};
use crate::state::lock;
use crate::usage::Changes;
use crate::Emulator;

impl Emulator {
    /// From now on, plugin calls (`/wxa/plugin`, `/wxa/devplugin`) meet faults at `rates`: the n-th call after this
    /// takes the n-th draw of `rates.seed`'s sequence (so the same calls in the same order meet the same faults). A
    /// fault scripted with [`Emulator::script`] for a call wins over the drawn one. Replaces earlier rates.
    ///
    /// # Panics
    /// If a rate is outside 0 to 1, or they add up to more than 1.
    pub fn set_fault_rates(&self, rates: FaultRates) {
        rates.validate().unwrap_or_else(|e| panic!("{e}"));
        lock(&self.shared).rates = Some(FaultDraws::new(rates));
    }

    /// No more faults drawn at rates (scripted faults stay).
    pub fn clear_fault_rates(&self) {
        lock(&self.shared).rates = None;
    }

    /// Calls to each plugin endpoint each mini program (or plugin) may make per day before 45009, or `None` for no
    /// limit (the default): the world's `settings.plugin_daily_quota`.
    pub fn set_plugin_daily_quota(&self, quota: Option<u32>) {
        lock(&self.shared).world.settings.plugin_daily_quota = quota;
    }

    /// What `appid`'s successful `apply`, `unbind` and `update` calls changed since the start (or the last reset).
    pub fn changes(&self, appid: &str) -> Changes {
        lock(&self.shared).usage.changes.get(appid).copied().unwrap_or_default()
    }

    /// [`Emulator::changes`] of every mini program that made a successful change call, by appid.
    pub fn all_changes(&self) -> BTreeMap<String, Changes> {
        lock(&self.shared).usage.changes.clone()
    }
}
