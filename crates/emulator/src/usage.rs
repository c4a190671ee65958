//! What mini programs' plugin calls used and changed: the daily quota per program and endpoint (45009), and the
//! changes actually made, for tests asserting that a rollout changed each program once.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::wire::WxError;
use super::world::{Application, World};
use wechat_wire::codes;

/// What one mini program's successful `apply`, `unbind` and `update` calls did
/// ([`Emulator::changes`](super::Emulator::changes)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// Calls that changed the program's plugins, one met by
    /// [`Fault::TimeoutAfterApply`](super::Fault::TimeoutAfterApply) too.
    pub applied: u64,
    /// Calls answered `ok` that changed nothing: an `update` to the version already set.
    pub unchanged: u64,
}

/// Quota days start at 00:00 China Standard Time (UTC+8), when WeChat's daily quotas reset.
const CHINA_OFFSET_SECS: i64 = 8 * 3600;
const DAY_SECS: i64 = 86_400;

#[derive(Debug, Default)]
pub(crate) struct PluginUsage {
    /// Per appid and endpoint path: the quota day and the calls counted in it.
    calls: HashMap<(String, &'static str), (i64, u32)>,
    pub(crate) changes: BTreeMap<String, Changes>,
}

impl PluginUsage {
    /// Counts a call of `appid` to `path`; 45009 (not counted) once the day's `quota` is spent.
    pub(crate) fn admit(
        &mut self,
        appid: &str,
        path: &'static str,
        now: i64,
        quota: Option<u32>,
    ) -> Result<(), WxError> {
        let day = (now + CHINA_OFFSET_SECS).div_euclid(DAY_SECS);
        let counted = self.calls.entry((appid.to_owned(), path)).or_insert((day, 0));
        if counted.0 != day {
            *counted = (day, 0);
        }
        if quota.is_some_and(|quota| counted.1 >= quota) {
            return Err(WxError::new(codes::DAILY_QUOTA));
        }
        counted.1 += 1;
        Ok(())
    }

    /// Records a successful call of `appid`: `before` is its application for the plugin before the call.
    pub(crate) fn record(&mut self, world: &World, appid: &str, plugin: &str, before: Option<&Application>) {
        let changes = self.changes.entry(appid.to_owned()).or_default();
        if application(world, plugin, appid) == before {
            changes.unchanged += 1;
        } else {
            changes.applied += 1;
        }
    }
}

/// `applicant`'s application for `plugin`, if there is one.
pub(crate) fn application<'w>(world: &'w World, plugin: &str, applicant: &str) -> Option<&'w Application> {
    world.application_index(plugin, applicant).map(|i| &world.applications[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_day_turns_at_midnight_in_china() {
        let mut usage = PluginUsage::default();
        // 2025-11-22 15:59:59 UTC is 23:59:59 in Beijing.
        let last_second = 1_763_827_199;
        assert!(usage.admit("wxa", "/wxa/plugin", last_second, Some(1)).is_ok());
        assert_eq!(usage.admit("wxa", "/wxa/plugin", last_second, Some(1)), Err(WxError::new(codes::DAILY_QUOTA)));
        assert!(usage.admit("wxa", "/wxa/devplugin", last_second, Some(1)).is_ok(), "each endpoint has its own");
        assert!(usage.admit("wxa", "/wxa/plugin", last_second + 1, Some(1)).is_ok());
    }
}
