//! Worlds in which thousands of mini programs have authorised a third-party platform, generated from a count and a
//! seed: what a platform rolling a plugin out to every authorizer meets.

use serde::{Deserialize, Serialize};

use super::desk::PLUGIN_FUNC_SET;
use super::seeded::{mix, Seeded};
use super::state::unix_now;
use super::world::{Account, Application, Status, World};

/// A mini program's authorisation of a third-party platform, in force when the emulator starts (or is reset):
/// `api_get_authorizer_list` lists it with a refresh token made at start, its `auth_time` the clock's start. Later
/// authorisations and withdrawals are the platform's state (`/__emulator/state`'s `platform`), not the world's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The platform's `component_appid`.
    pub component: String,
    /// The mini program's appid.
    pub authorizer: String,
    /// The permission sets (权限集) granted; plugin management (40) alone when absent.
    #[serde(default = "plugin_set")]
    pub func_ids: Vec<u32>,
}

fn plugin_set() -> Vec<u32> {
    vec![PLUGIN_FUNC_SET]
}

/// How long before the clock's start generated applications were made: pending ones a day (six days before they
/// time out), decided ones a month.
const PENDING_AGE_SECS: i64 = 86_400;
const DECIDED_AGE_SECS: i64 = 30 * 86_400;

impl World {
    /// This world and `count` more mini programs, each authorising the platform `component` for permission set 40,
    /// all alike for the same `seed`. Appids are `wx` and 16 lowercase hex digits (unique within a seed), secrets 32
    /// hex digits, nicknames `Mini program 00000` on.
    ///
    /// Each program's state for the world's first applicable plugin that lists quick-update versions (the demo plugin
    /// `wxplugin00000001` in the built-in world) is drawn from the seed: 40 % none (`apply` succeeds), 25 % approved
    /// at the first listed version (`update` to the last one changes it), 15 % approved and never quick-updated, 10 %
    /// pending (`apply` answers 89237), 10 % refused (`apply` starts over). Without such a plugin, none has any.
    ///
    /// # Panics
    /// If `component` is not a platform of this world (a mistake in the test).
    pub fn with_authorizers(mut self, component: &str, count: usize, seed: u64) -> World {
        assert!(self.component(component).is_some(), "{component} is not a platform of the world");
        let plugin = self.rollout_plugin();
        let now = self.now.unwrap_or_else(unix_now);
        let mut draws = Seeded::new(seed);
        let key = draws.next_u64();
        for i in 0..count {
            let appid = format!("wx{:016x}", mix(key.wrapping_add(i as u64)));
            self.accounts.push(Account {
                appid: appid.clone(),
                secret: format!("{:016x}{:016x}", draws.next_u64(), draws.next_u64()),
                nickname: format!("Mini program {i:05}"),
                headimgurl: format!("http://wx.qlogo.cn/mmhead/{appid}/0"),
                categories: Vec::new(),
                plugin: None,
                ip_whitelist_blocks: false,
                secret_frozen: false,
                gray_release: false,
                api_security: None,
            });
            let drawn = draws.next_f64();
            if let Some((plugin, versions)) = &plugin {
                self.applications.extend(plugin_state(plugin, versions, &appid, drawn, now));
            }
            let func_ids = plugin_set();
            self.authorizations.push(Authorization { component: component.to_owned(), authorizer: appid, func_ids });
        }
        self
    }

    /// The plugin a rollout would bring: applicable, with versions to quick-update between.
    fn rollout_plugin(&self) -> Option<(String, Vec<String>)> {
        self.accounts.iter().find_map(|a| {
            let p = a.plugin.as_ref().filter(|p| p.applicable && !p.quick_update_versions.is_empty())?;
            Some((a.appid.clone(), p.quick_update_versions.clone()))
        })
    }
}

/// A generated program's application for `plugin`, if `drawn` (uniform in `[0, 1)`) gives it one.
fn plugin_state(plugin: &str, versions: &[String], applicant: &str, drawn: f64, now: i64) -> Option<Application> {
    let (status, user_version, age) = match drawn {
        d if d < 0.40 => return None,
        d if d < 0.65 => (Status::Approved, versions.first().cloned(), DECIDED_AGE_SECS),
        d if d < 0.80 => (Status::Approved, None, DECIDED_AGE_SECS),
        d if d < 0.90 => (Status::Pending, None, PENDING_AGE_SECS),
        _ => (Status::Refused, None, DECIDED_AGE_SECS),
    };
    Some(Application {
        plugin: plugin.to_owned(),
        applicant: applicant.to_owned(),
        status,
        reason: "rollout".to_owned(),
        create_time: now - age,
        refuse_reason: (status == Status::Refused).then(|| "category not supported".to_owned()),
        user_version,
    })
}
