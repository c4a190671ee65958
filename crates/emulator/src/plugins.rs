//! The plugin API (`/wxa/plugin`, `/wxa/devplugin`): the endpoint, and the business rules over the world's accounts
//! and applications.

use http::Method;
use serde_json::{json, Map, Value};

use super::api_security::{self, Owner, SecurityHeaders, Spoil};
use super::platform;
use super::state::State;
use super::tokens::Caller;
use super::usage::application;
use super::wire::{error_body, json_object, require_post, Reply, WxError};
use super::world::{Application, Status, World};
use wechat_wire::{codes, paths};

/// The two plugin endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginEndpoint {
    Plugin,
    DevPlugin,
}

impl PluginEndpoint {
    /// The endpoint served at `path`, if it is one of the two.
    pub fn at(path: &str) -> Option<PluginEndpoint> {
        [PluginEndpoint::Plugin, PluginEndpoint::DevPlugin].into_iter().find(|endpoint| endpoint.path() == path)
    }

    fn path(self) -> &'static str {
        match self {
            PluginEndpoint::Plugin => paths::PLUGIN,
            PluginEndpoint::DevPlugin => paths::DEV_PLUGIN,
        }
    }
}

type PluginResult = Result<Map<String, Value>, WxError>;

/// A request to a plugin endpoint, as received.
pub(crate) struct Received<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: &'a str,
    pub security: &'a SecurityHeaders,
    pub body: &'a [u8],
}

/// The token, then API security, then the call: errors of the first two are plain; the call's answer, business
/// errors included, is sealed when the request was secured (and spoiled as scripted).
pub(crate) fn plugin_call(
    state: &mut State,
    endpoint: PluginEndpoint,
    request: &Received<'_>,
    spoil: Option<Spoil>,
    now: i64,
) -> Reply {
    let layer_now = state.clock.layer_now();
    let checked = authenticate(state, request, now).and_then(|(appid, caller, token)| {
        let owner = match (caller, state.platform.minted.get(&token)) {
            (Caller::Plain, _) => Owner::Account(appid.clone()),
            (Caller::Authorizer, Some((component, _))) => Owner::Component(component.clone()),
            (Caller::Authorizer, None) => Owner::AnyComponent,
        };
        let session =
            api_security::open(&state.world, &owner, request.security, request.path, request.body, layer_now)?;
        Ok((appid, caller, token, session))
    });
    let (appid, caller, token, session) = match checked {
        Ok(checked) => checked,
        Err(e) => return Reply::Json(error_body(&e)),
    };
    let body = session.as_ref().map_or(request.body, |s| s.body.as_slice());
    let answer = call(state, endpoint, &appid, caller, &token, body, now).unwrap_or_else(|e| error_body(&e));
    match session {
        None => Reply::Json(answer),
        Some(session) => session
            .seal(&state.world, answer, layer_now, spoil)
            .map_or_else(|e| Reply::Json(error_body(&e)), Reply::Sealed),
    }
}

/// The caller's appid, its kind and its token.
fn authenticate(state: &State, request: &Received<'_>, now: i64) -> Result<(String, Caller, String), WxError> {
    require_post(request.method)?;
    let token = form_urlencoded::parse(request.query.as_bytes()).find(|(k, _)| k == "access_token").map(|(_, v)| v);
    let (appid, caller) = state.tokens.check(token.as_deref(), now)?;
    Ok((appid, caller, token.unwrap_or_default().into_owned()))
}

fn call(
    state: &mut State,
    endpoint: PluginEndpoint,
    appid: &str,
    caller: Caller,
    token: &str,
    body: &[u8],
    now: i64,
) -> Result<Value, WxError> {
    if caller == Caller::Authorizer {
        // Both plugin endpoints belong to the platform's permission set 40.
        platform::check_plugin_call(state, token)?;
    }
    state.usage.admit(appid, endpoint.path(), now, state.world.settings.plugin_daily_quota)?;
    let body = json_object(body)?;
    let watched = changed_plugin(endpoint, &body).map(|p| (p.to_owned(), application(&state.world, p, appid).cloned()));
    let mut out = state.world.call(endpoint, appid, caller, &body, now)?;
    if let Some((plugin, before)) = watched {
        state.usage.record(&state.world, appid, &plugin, before.as_ref());
    }
    let mut answer = Map::new();
    answer.insert("errcode".into(), json!(0));
    answer.insert("errmsg".into(), json!("ok"));
    answer.append(&mut out);
    Ok(Value::Object(answer))
}

/// The plugin a call may change a mini program's use of: `apply`, `unbind` and `update` name it.
fn changed_plugin(endpoint: PluginEndpoint, body: &Map<String, Value>) -> Option<&str> {
    let changing = matches!(body.get("action").and_then(Value::as_str), Some("apply" | "unbind" | "update"));
    body.get("plugin_appid").and_then(Value::as_str).filter(|_| endpoint == PluginEndpoint::Plugin && changing)
}

impl World {
    /// One call of `/wxa/plugin` or `/wxa/devplugin` by `caller_appid`, already authenticated.
    pub fn call(
        &mut self,
        endpoint: PluginEndpoint,
        caller_appid: &str,
        caller: Caller,
        body: &Map<String, Value>,
        now: i64,
    ) -> PluginResult {
        self.expire_pending(now);
        let action = match body.get("action") {
            Some(Value::String(a)) => a.as_str(),
            Some(_) => return Err(WxError::hinted(codes::DATA_FORMAT_ERROR, "action must be a string")),
            None => return Err(WxError::hinted(codes::DATA_FORMAT_ERROR, "action missing")),
        };
        match (endpoint, action) {
            (PluginEndpoint::Plugin, "apply") => self.apply(caller_appid, body, now),
            (PluginEndpoint::Plugin, "list") => Ok(self.list(caller_appid)),
            (PluginEndpoint::Plugin, "unbind") => self.unbind(caller_appid, body),
            (PluginEndpoint::Plugin, "update") => self.update(caller_appid, caller, body),
            (PluginEndpoint::DevPlugin, "dev_apply_list") => self.dev_apply_list(caller_appid, body),
            (PluginEndpoint::DevPlugin, "dev_agree") => self.dev_decide(caller_appid, body, Decision::Agree),
            (PluginEndpoint::DevPlugin, "dev_refuse") => self.dev_decide(caller_appid, body, Decision::Refuse),
            (PluginEndpoint::DevPlugin, "dev_delete") => self.dev_decide(caller_appid, body, Decision::Delete),
            (_, other) => Err(WxError::hinted(codes::DATA_FORMAT_ERROR, format!("invalid action {other}"))),
        }
    }

    fn apply(&mut self, caller: &str, body: &Map<String, Value>, now: i64) -> PluginResult {
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

    fn unbind(&mut self, caller: &str, body: &Map<String, Value>) -> PluginResult {
        let plugin_appid = required_str(body, "plugin_appid")?;
        let i = self.application_index(plugin_appid, caller).ok_or(WxError::new(codes::PLUGIN_NOT_FOUND))?;
        if self.applications[i].status == Status::Pending {
            return Err(WxError::new(codes::PENDING_CANNOT_BE_REMOVED));
        }
        self.applications.remove(i);
        Ok(Map::new())
    }

    fn update(&mut self, caller_appid: &str, caller: Caller, body: &Map<String, Value>) -> PluginResult {
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

    fn dev_apply_list(&mut self, caller: &str, body: &Map<String, Value>) -> PluginResult {
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

    fn dev_decide(&mut self, caller: &str, body: &Map<String, Value>, decision: Decision) -> PluginResult {
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
