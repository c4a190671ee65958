//! The emulator's accounts, plugins, applications and third-party platforms, as loaded from (and dumped to) JSON,
//! with the checks serde cannot make. The plugin API's rules over them are in `plugins`.

use serde::{Deserialize, Serialize};

use super::invalid::Invalid;
use super::population::Authorization;
use super::security_settings::{is_false, AppApiSecurity, PlatformApiSecurity};
use wechat_wire::crypt::MsgCrypt;

/// Everything the emulator knows besides tokens: loadable from (and dumpable to) JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// Where the virtual clock starts (unix seconds); the real time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<i64>,
    /// The mini programs and plugins, with the appids and secrets the token endpoints check.
    pub accounts: Vec<Account>,
    /// Every mini program's application for a plugin, whatever its status; none when absent.
    #[serde(default)]
    pub applications: Vec<Application>,
    /// Lifetimes, limits and quotas; the defaults when absent.
    #[serde(default)]
    pub settings: Settings,
    /// Third-party platforms (components) the mini programs can authorise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
    /// The platform side of API security (服务端API安全): the signing origin and the platform certificates.
    #[serde(default)]
    pub api_security: PlatformApiSecurity,
    /// Mini programs' authorisations of the platforms when the emulator starts; none when absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorizations: Vec<Authorization>,
}

/// A mini program, or a plugin (an account with `plugin` set). Both have their own appid and secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Its AppID, as token calls and plugin calls name it.
    pub appid: String,
    /// Its AppSecret, checked by `/cgi-bin/token` and `stable_token` (40125 if wrong).
    pub secret: String,
    /// The name shown in `list` (a plugin) and `dev_apply_list` (an applicant) answers.
    pub nickname: String,
    /// The avatar URL shown in `list` and `dev_apply_list` answers.
    pub headimgurl: String,
    /// Its service categories (服务类目), shown with its applications in `dev_apply_list`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    /// Set when the account is a plugin: who develops it and what applicants may do with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginInfo>,
    /// The account turned on its API IP whitelist and our caller is not on it: token calls answer 40164.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ip_whitelist_blocks: bool,
    /// The AppSecret is frozen: token calls answer 40243.
    #[serde(default, skip_serializing_if = "is_false")]
    pub secret_frozen: bool,
    /// A gray release of the mini program is in progress: quick update answers 89258.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gray_release: bool,
    /// Its API security keys and console switch; none set when absent (a secured call answers 40238).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_security: Option<AppApiSecurity>,
}

/// One service category of a mini program, as WeChat lists it in `dev_apply_list` (`{"first", "second"}`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// The first-level category, e.g. `工具`.
    pub first: String,
    /// The second-level category, e.g. `效率`.
    pub second: String,
}

/// What makes an account a plugin: its developer, and whether and how mini programs may apply and update.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginInfo {
    /// The appid of the account that develops the plugin.
    pub owner: String,
    /// `false`: applications answer 89236.
    #[serde(default = "yes")]
    pub applicable: bool,
    /// Versions a mini program may switch to with `update` (quick update); others answer 89257.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_update_versions: Vec<String>,
}

/// One mini program's application for (and, once approved, use of) one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// The plugin's appid (`plugin_appid` in the plugin calls).
    pub plugin: String,
    /// The applying mini program's appid.
    pub applicant: String,
    /// Where the application stands, as `list` and `dev_apply_list` give it.
    pub status: Status,
    /// The applicant's reason, given with `apply`.
    #[serde(default)]
    pub reason: String,
    /// Unix seconds of the (latest) application.
    pub create_time: i64,
    /// The plugin owner's reason, given with `dev_refuse`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_reason: Option<String>,
    /// The plugin version set by a quick update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_version: Option<String>,
}

/// Plugin status as WeChat numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Status {
    /// 1: applied for, awaiting the plugin owner's `dev_agree` or `dev_refuse`.
    Pending = 1,
    /// 2: approved; the mini program may use the plugin.
    Approved = 2,
    /// 3: refused by the plugin owner.
    Refused = 3,
    /// 4: left pending longer than `pending_timeout_secs`.
    TimedOut = 4,
}

impl TryFrom<u8> for Status {
    type Error = Invalid;
    fn try_from(n: u8) -> Result<Self, Invalid> {
        match n {
            1 => Ok(Status::Pending),
            2 => Ok(Status::Approved),
            3 => Ok(Status::Refused),
            4 => Ok(Status::TimedOut),
            other => Err(Invalid::World(format!("plugin status must be 1 to 4, not {other}"))),
        }
    }
}

impl From<Status> for u8 {
    fn from(s: Status) -> u8 {
        s as u8
    }
}

/// Lifetimes, limits and quotas the emulator enforces; a field left out of a state file takes its default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// A pending application older than this becomes timed out (status 4).
    pub pending_timeout_secs: i64,
    /// How many pending or approved plugins one mini program may have (89238 beyond).
    pub plugin_limit: usize,
    /// Lifetime of every access token.
    pub token_ttl_secs: i64,
    /// `/cgi-bin/token` calls per appid per day (45009 beyond).
    pub classic_daily_quota: u32,
    /// `/cgi-bin/stable_token` calls per appid per minute (45011 beyond).
    pub stable_minute_quota: u32,
    /// `/cgi-bin/stable_token` calls per appid per day (45009 beyond).
    pub stable_daily_quota: u32,
    /// `force_refresh: true` calls per appid in a rolling 24 h (45009 beyond).
    pub force_refresh_daily_quota: u32,
    /// The least time between two `force_refresh: true` calls of one appid, in seconds (45011 if closer).
    pub force_refresh_spacing_secs: i64,
    /// Calls to each plugin endpoint per mini program (or plugin) per day, 45009 beyond; no limit when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_daily_quota: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            pending_timeout_secs: 7 * 86_400,
            plugin_limit: 20,
            token_ttl_secs: 7_200,
            classic_daily_quota: 2_000,
            stable_minute_quota: 10_000,
            stable_daily_quota: 500_000,
            force_refresh_daily_quota: 20,
            force_refresh_spacing_secs: 30,
            plugin_daily_quota: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// A third-party platform account (component): its secret and the message-check settings of its console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Its `component_appid`.
    pub appid: String,
    /// Its `component_appsecret`, checked by `api_component_token` and `api_start_push_ticket`.
    pub secret: String,
    /// 消息校验 Token: the `token` in the push signatures.
    pub token: String,
    /// 消息加解密 Key: 43 characters `[a-zA-Z0-9]`.
    pub encoding_aes_key: String,
    /// 授权事件接收URL: where pushes are POSTed. Without one, pushes are only handed to the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_url: Option<String>,
    /// The platform's IP whitelist leaves our caller out: every component API answers 61004.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ip_whitelist_blocks: bool,
    /// Its API security keys, used for plugin calls with its authorizers' tokens; none set when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_security: Option<AppApiSecurity>,
}

impl Component {
    pub(crate) fn crypt(&self) -> Result<MsgCrypt, Invalid> {
        let shaped =
            self.encoding_aes_key.len() == 43 && self.encoding_aes_key.bytes().all(|b| b.is_ascii_alphanumeric());
        if !shaped {
            return Err(Invalid::World(format!(
                "component {}: encoding_aes_key must be 43 characters [a-zA-Z0-9]",
                self.appid
            )));
        }
        MsgCrypt::new(&self.token, &self.encoding_aes_key, &self.appid)
            .map_err(|e| Invalid::World(format!("component {}: {e}", self.appid)))
    }

    /// What serde cannot check: a usable key.
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        self.crypt().map(drop)
    }
}

impl World {
    /// The built-in state (`default_world.json`): the demo accounts and platform, more mini programs and plugins.
    pub fn builtin() -> World {
        serde_json::from_str(include_str!("default_world.json")).expect("the built-in emulator state is valid JSON")
    }

    /// Every mini program, plugin and platform with API security keys, and its keys.
    pub fn api_security_keys(&self) -> impl Iterator<Item = (&str, &AppApiSecurity)> {
        let accounts = self.accounts.iter().map(|a| (a.appid.as_str(), a.api_security.as_ref()));
        let components = self.components.iter().map(|c| (c.appid.as_str(), c.api_security.as_ref()));
        accounts.chain(components).filter_map(|(appid, keys)| Some((appid, keys?)))
    }

    /// The API security keys of the mini program, plugin or platform `appid`, if it has some.
    pub fn api_security_of(&self, appid: &str) -> Option<&AppApiSecurity> {
        self.api_security_keys().find(|(a, _)| *a == appid).map(|(_, keys)| keys)
    }

    pub(crate) fn api_security_of_mut(&mut self, appid: &str) -> Option<&mut AppApiSecurity> {
        let account = self.accounts.iter_mut().find(|a| a.appid == appid).map(|a| &mut a.api_security);
        let keys =
            account.or_else(|| self.components.iter_mut().find(|c| c.appid == appid).map(|c| &mut c.api_security));
        keys?.as_mut()
    }

    /// The mini program or plugin `appid`.
    pub fn account(&self, appid: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.appid == appid)
    }

    /// The third-party platform `appid`.
    pub fn component(&self, appid: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.appid == appid)
    }

    pub(crate) fn plugin(&self, appid: &str) -> Option<&Account> {
        self.account(appid).filter(|a| a.plugin.is_some())
    }

    pub(crate) fn application_index(&self, plugin: &str, applicant: &str) -> Option<usize> {
        self.applications.iter().position(|a| a.plugin == plugin && a.applicant == applicant)
    }

    /// Pending applications past their time become timed out; called before every read or change.
    pub fn expire_pending(&mut self, now: i64) {
        let limit = self.settings.pending_timeout_secs;
        for app in &mut self.applications {
            if app.status == Status::Pending && now - app.create_time >= limit {
                app.status = Status::TimedOut;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID, DEMO_COMPONENT_SECRET, DEMO_COMPONENT_TOKEN};

    #[test]
    fn builtin_world_is_consistent_and_covers_every_status() {
        let w = World::builtin();
        w.validate().unwrap();
        let demo = "wxdemo0000000001";
        for status in [Status::Pending, Status::Approved, Status::Refused, Status::TimedOut] {
            assert!(w.applications.iter().any(|a| a.plugin == "wxplugin00000001" && a.status == status));
            assert!(w.applications.iter().any(|a| a.applicant == demo && a.status == status));
        }
    }

    #[test]
    fn the_builtin_demo_component_matches_the_exported_constants() {
        let world = World::builtin();
        let c = world.component(DEMO_COMPONENT_APPID).unwrap();
        assert_eq!(
            (c.secret.as_str(), c.token.as_str(), c.encoding_aes_key.as_str()),
            (DEMO_COMPONENT_SECRET, DEMO_COMPONENT_TOKEN, DEMO_COMPONENT_AES_KEY)
        );
        assert!(c.push_url.is_none() && !c.ip_whitelist_blocks);
        let shaped =
            DEMO_COMPONENT_APPID.len() == 18 && DEMO_COMPONENT_APPID.bytes().all(|b| b.is_ascii_alphanumeric());
        assert!(shaped && DEMO_COMPONENT_APPID.starts_with("wx"));
    }

    #[test]
    fn a_world_with_an_unusable_key_or_a_doubled_component_is_refused() {
        let mut world = World::builtin();
        world.components[0].encoding_aes_key.pop();
        assert!(world.validate().unwrap_err().to_string().contains("43 characters"));
        let mut world = World::builtin();
        world.components[0].encoding_aes_key.replace_range(0..1, "+");
        assert!(world.validate().is_err());
        let mut world = World::builtin();
        world.components.push(world.components[0].clone());
        assert!(world.validate().unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn a_state_file_without_components_still_loads() {
        let world: World = serde_json::from_str(r#"{"accounts": []}"#).unwrap();
        assert!(world.components.is_empty());
    }
}
