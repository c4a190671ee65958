//! The emulator's accounts, plugins and applications, and the plugin API's business rules over them.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::platform::Component;
use crate::wechat::codes;

/// Everything the emulator knows besides tokens: loadable from (and dumpable to) JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    /// Where the virtual clock starts (unix seconds); the real time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<i64>,
    pub accounts: Vec<Account>,
    #[serde(default)]
    pub applications: Vec<Application>,
    #[serde(default)]
    pub settings: Settings,
    /// Third-party platforms (components) the mini programs can authorise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

/// A mini program, or a plugin (an account with `plugin` set). Both have their own appid and secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub appid: String,
    pub secret: String,
    pub nickname: String,
    pub headimgurl: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub first: String,
    pub second: String,
}

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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub plugin: String,
    pub applicant: String,
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
    Pending = 1,
    Approved = 2,
    Refused = 3,
    TimedOut = 4,
}

impl TryFrom<u8> for Status {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        match n {
            1 => Ok(Status::Pending),
            2 => Ok(Status::Approved),
            3 => Ok(Status::Refused),
            4 => Ok(Status::TimedOut),
            other => Err(format!("plugin status must be 1 to 4, not {other}")),
        }
    }
}

impl From<Status> for u8 {
    fn from(s: Status) -> u8 {
        s as u8
    }
}

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
    /// `/cgi-bin/stable_token` calls per appid per minute and per day (45011 / 45009 beyond).
    pub stable_minute_quota: u32,
    pub stable_daily_quota: u32,
    /// `force_refresh: true` calls per appid per day, and the least spacing between two of them.
    pub force_refresh_daily_quota: u32,
    pub force_refresh_spacing_secs: i64,
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
        }
    }
}

fn yes() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A WeChat error answer: the code, and an optional hint appended to WeChat's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WxError {
    pub code: i64,
    pub hint: Option<String>,
}

impl WxError {
    pub fn new(code: i64) -> Self {
        WxError { code, hint: None }
    }
    pub fn hinted(code: i64, hint: impl Into<String>) -> Self {
        WxError { code, hint: Some(hint.into()) }
    }
}

/// Which kind of token made a call: plain mini-program tokens cannot quick-update (89256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Caller {
    Plain,
    Authorizer,
}

/// The two plugin endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Plugin,
    DevPlugin,
}

type Answer = Result<Map<String, Value>, WxError>;

impl World {
    pub fn builtin() -> World {
        serde_json::from_str(include_str!("default_world.json")).expect("the built-in emulator state is valid JSON")
    }

    /// Checks what serde cannot: unique appids, plugins owned by known accounts, applications between known parties.
    pub fn validate(&self) -> Result<(), String> {
        for (i, a) in self.accounts.iter().enumerate() {
            if self.accounts[..i].iter().any(|b| b.appid == a.appid) {
                return Err(format!("account {} appears twice", a.appid));
            }
            if let Some(p) = &a.plugin {
                if self.account(&p.owner).is_none() {
                    return Err(format!("plugin {} is owned by unknown account {}", a.appid, p.owner));
                }
            }
        }
        for (i, app) in self.applications.iter().enumerate() {
            if self.plugin(&app.plugin).is_none() {
                return Err(format!("application for unknown plugin {}", app.plugin));
            }
            if self.account(&app.applicant).is_none() {
                return Err(format!("application by unknown account {}", app.applicant));
            }
            if self.applications[..i].iter().any(|b| b.plugin == app.plugin && b.applicant == app.applicant) {
                return Err(format!("{} applied for {} twice", app.applicant, app.plugin));
            }
        }
        for (i, c) in self.components.iter().enumerate() {
            if self.components[..i].iter().any(|b| b.appid == c.appid) || self.account(&c.appid).is_some() {
                return Err(format!("component {} appears twice", c.appid));
            }
            c.validate()?;
        }
        Ok(())
    }

    pub fn account(&self, appid: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.appid == appid)
    }

    /// The third-party platform `appid`.
    pub fn component(&self, appid: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.appid == appid)
    }

    fn plugin(&self, appid: &str) -> Option<&Account> {
        self.account(appid).filter(|a| a.plugin.is_some())
    }

    fn application_index(&self, plugin: &str, applicant: &str) -> Option<usize> {
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

    /// One call of `/wxa/plugin` or `/wxa/devplugin` by `caller_appid`, already authenticated.
    pub fn call(
        &mut self,
        endpoint: Endpoint,
        caller_appid: &str,
        caller: Caller,
        body: &Map<String, Value>,
        now: i64,
    ) -> Answer {
        self.expire_pending(now);
        let action = match body.get("action") {
            Some(Value::String(a)) => a.as_str(),
            Some(_) => return Err(WxError::hinted(codes::DATA_FORMAT_ERROR, "action must be a string")),
            None => return Err(WxError::hinted(codes::DATA_FORMAT_ERROR, "action missing")),
        };
        match (endpoint, action) {
            (Endpoint::Plugin, "apply") => self.apply(caller_appid, body, now),
            (Endpoint::Plugin, "list") => Ok(self.list(caller_appid)),
            (Endpoint::Plugin, "unbind") => self.unbind(caller_appid, body),
            (Endpoint::Plugin, "update") => self.update(caller_appid, caller, body),
            (Endpoint::DevPlugin, "dev_apply_list") => self.dev_apply_list(caller_appid, body),
            (Endpoint::DevPlugin, "dev_agree") => self.dev_decide(caller_appid, body, Decision::Agree),
            (Endpoint::DevPlugin, "dev_refuse") => self.dev_decide(caller_appid, body, Decision::Refuse),
            (Endpoint::DevPlugin, "dev_delete") => self.dev_decide(caller_appid, body, Decision::Delete),
            (_, other) => Err(WxError::hinted(codes::DATA_FORMAT_ERROR, format!("invalid action {other}"))),
        }
    }

    fn apply(&mut self, caller: &str, body: &Map<String, Value>, now: i64) -> Answer {
        let plugin_appid = required_str(body, "plugin_appid")?;
        let reason = optional_str(body, "reason")?.unwrap_or_default();
        let plugin = self.plugin(plugin_appid).ok_or(WxError::new(codes::PLUGIN_DOES_NOT_EXIST))?;
        if !plugin.plugin.as_ref().is_some_and(|p| p.applicable) {
            return Err(WxError::new(codes::PLUGIN_CANNOT_APPLY));
        }
        let existing = self.application_index(plugin_appid, caller);
        if let Some(i) = existing {
            if matches!(self.applications[i].status, Status::Pending | Status::Approved) {
                return Err(WxError::new(codes::PLUGIN_ALREADY_ADDED));
            }
        }
        let active = self
            .applications
            .iter()
            .filter(|a| a.applicant == caller && matches!(a.status, Status::Pending | Status::Approved))
            .count();
        if active >= self.settings.plugin_limit {
            return Err(WxError::new(codes::PLUGIN_LIMIT));
        }
        let fresh = Application {
            plugin: plugin_appid.to_owned(),
            applicant: caller.to_owned(),
            status: Status::Pending,
            reason,
            create_time: now,
            refuse_reason: None,
            user_version: None,
        };
        match existing {
            // A refused or timed-out application may be made again; it starts over as pending.
            Some(i) => self.applications[i] = fresh,
            None => self.applications.push(fresh),
        }
        Ok(Map::new())
    }

    fn list(&self, caller: &str) -> Map<String, Value> {
        let plugin_list: Vec<Value> = self
            .applications
            .iter()
            .filter(|a| a.applicant == caller)
            .filter_map(|a| {
                let p = self.account(&a.plugin)?;
                Some(json!({
                    "appid": p.appid,
                    "status": a.status as u8,
                    "nickname": p.nickname,
                    "headimgurl": p.headimgurl,
                    // Undocumented, but real answers carry it.
                    "reason": a.refuse_reason.clone().unwrap_or_default(),
                }))
            })
            .collect();
        let mut out = Map::new();
        out.insert("plugin_list".into(), Value::Array(plugin_list));
        // Undocumented, but real answers carry an empty one.
        out.insert("apply_list".into(), Value::Array(Vec::new()));
        out
    }

    fn unbind(&mut self, caller: &str, body: &Map<String, Value>) -> Answer {
        let plugin_appid = required_str(body, "plugin_appid")?;
        let i = self.application_index(plugin_appid, caller).ok_or(WxError::new(codes::PLUGIN_NOT_FOUND))?;
        if self.applications[i].status == Status::Pending {
            return Err(WxError::new(codes::PENDING_CANNOT_BE_REMOVED));
        }
        self.applications.remove(i);
        Ok(Map::new())
    }

    fn update(&mut self, caller_appid: &str, caller: Caller, body: &Map<String, Value>) -> Answer {
        if caller != Caller::Authorizer {
            return Err(WxError::new(codes::NOT_AUTHORIZER_TOKEN));
        }
        let plugin_appid = required_str(body, "plugin_appid")?;
        let user_version = required_str(body, "user_version")?;
        let i = self
            .application_index(plugin_appid, caller_appid)
            .filter(|&i| self.applications[i].status == Status::Approved)
            .ok_or(WxError::new(codes::PLUGIN_NOT_FOUND))?;
        let supported = self
            .plugin(plugin_appid)
            .and_then(|p| p.plugin.as_ref())
            .is_some_and(|p| p.quick_update_versions.iter().any(|v| v == user_version));
        if !supported {
            return Err(WxError::new(codes::NO_QUICK_UPDATE));
        }
        if self.account(caller_appid).is_some_and(|a| a.gray_release) {
            return Err(WxError::new(codes::GRAY_RELEASE_IN_PROGRESS));
        }
        self.applications[i].user_version = Some(user_version.to_owned());
        Ok(Map::new())
    }

    /// The plugin a `/wxa/devplugin` caller manages: the plugin's own token, or the token of the account that owns
    /// exactly one plugin (so one set of demo credentials can show both sides).
    fn managed_plugin(&self, caller: &str) -> Result<String, WxError> {
        if self.plugin(caller).is_some() {
            return Ok(caller.to_owned());
        }
        let mut owned = self.accounts.iter().filter(|a| a.plugin.as_ref().is_some_and(|p| p.owner == caller));
        match (owned.next(), owned.next()) {
            (Some(p), None) => Ok(p.appid.clone()),
            (Some(_), Some(_)) => Err(WxError::hinted(
                codes::API_UNAUTHORIZED,
                "this account develops several plugins: call with the plugin's own access_token",
            )),
            (None, _) => Err(WxError::hinted(codes::API_UNAUTHORIZED, "not a plugin developer")),
        }
    }

    fn dev_apply_list(&mut self, caller: &str, body: &Map<String, Value>) -> Answer {
        let plugin = self.managed_plugin(caller)?;
        let page = positive_int(body, "page")?;
        let num = positive_int(body, "num")?;
        let mut apps: Vec<&Application> = self.applications.iter().filter(|a| a.plugin == plugin).collect();
        apps.sort_by(|a, b| b.create_time.cmp(&a.create_time).then_with(|| a.applicant.cmp(&b.applicant)));
        let skip = usize::try_from((page - 1).saturating_mul(num)).unwrap_or(usize::MAX);
        let take = usize::try_from(num).unwrap_or(usize::MAX);
        let apply_list: Vec<Value> = apps
            .into_iter()
            .skip(skip)
            .take(take)
            .filter_map(|a| {
                let who = self.account(&a.applicant)?;
                Some(json!({
                    "appid": who.appid,
                    "status": a.status as u8,
                    "nickname": who.nickname,
                    "headimgurl": who.headimgurl,
                    "categories": who.categories,
                    "create_time": a.create_time.to_string(),
                    "apply_url": format!("https://mp.weixin.qq.com/wxopen/plugindevapply?plugin={}&appid={}", a.plugin, a.applicant),
                    "reason": a.reason,
                }))
            })
            .collect();
        let mut out = Map::new();
        out.insert("apply_list".into(), Value::Array(apply_list));
        Ok(out)
    }

    fn dev_decide(&mut self, caller: &str, body: &Map<String, Value>, decision: Decision) -> Answer {
        let plugin = self.managed_plugin(caller)?;
        // WeChat documents `appid` for agree only; without it no application is named, so the emulator wants it
        // for refuse and delete too and answers 89242 when it is absent.
        let applicant = optional_str(body, "appid")?.ok_or(WxError::new(codes::APPID_NOT_IN_APPLY_LIST))?;
        let reason = optional_str(body, "reason")?;
        let i = self.application_index(&plugin, &applicant).ok_or(WxError::new(codes::APPID_NOT_IN_APPLY_LIST))?;
        let status = self.applications[i].status;
        match decision {
            Decision::Agree | Decision::Refuse if status != Status::Pending => {
                Err(WxError::new(codes::ONLY_PENDING_CAN_BE_DECIDED))
            }
            Decision::Agree => {
                self.applications[i].status = Status::Approved;
                Ok(Map::new())
            }
            Decision::Refuse => {
                self.applications[i].status = Status::Refused;
                self.applications[i].refuse_reason = reason;
                Ok(Map::new())
            }
            Decision::Delete if !matches!(status, Status::Refused | Status::TimedOut) => {
                Err(WxError::new(codes::ONLY_CLOSED_CAN_BE_DELETED))
            }
            Decision::Delete => {
                self.applications.remove(i);
                Ok(Map::new())
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Decision {
    Agree,
    Refuse,
    Delete,
}

fn required_str<'a>(body: &'a Map<String, Value>, key: &str) -> Result<&'a str, WxError> {
    match body.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(WxError::hinted(codes::DATA_FORMAT_ERROR, format!("{key} missing or not a string"))),
    }
}

fn optional_str(body: &Map<String, Value>, key: &str) -> Result<Option<String>, WxError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(WxError::hinted(codes::DATA_FORMAT_ERROR, format!("{key} must be a string"))),
    }
}

fn positive_int(body: &Map<String, Value>, key: &str) -> Result<i64, WxError> {
    match body.get(key).and_then(Value::as_i64) {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(WxError::hinted(codes::DATA_FORMAT_ERROR, format!("{key} must be a positive integer"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
