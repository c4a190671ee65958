//! The emulator as WeChat's open platform (第三方平台): component_verify_ticket pushes, the component token, the
//! authorisation code, the authorizer tokens and refresh tokens, the authorizer list, and the encrypted pushes to a
//! platform's authorisation-event URL.
//!
//! Pushes happen only when asked for (a test, the control endpoint, `api_start_push_ticket`): the emulator keeps no
//! ten-minute timer, so a test decides when a ticket arrives.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use http::Method;
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::server::{json_object, State};
use super::tokens::well_formed;
use super::world::{World, WxError};
use crate::platform::crypt::{self, MsgCrypt};
use crate::wechat::codes;

/// How long a pushed component_verify_ticket can mint component tokens.
pub const TICKET_TTL_SECS: i64 = 12 * 3600;
/// How long an authorisation code can be exchanged with `api_query_auth`.
pub const AUTH_CODE_TTL_SECS: i64 = 3600;
/// How long a rotated refresh token keeps working (WeChat staff: "5分钟的过渡期").
pub const REFRESH_GRACE_SECS: i64 = 300;
/// The permission set (权限集) both plugin endpoints belong to.
pub const PLUGIN_FUNC_SET: u32 = 40;
/// The largest `count` `api_get_authorizer_list` accepts.
pub const MAX_LIST_COUNT: i64 = 500;
/// WeChat gives up on a push after about 5 s.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Tickets kept per platform: a ticket pushed this long ago is far past its 12 h anyway.
const TICKETS_KEPT: usize = 1_000;

/// A third-party platform account (component): its secret and the message-check settings of its console.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub appid: String,
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
}

impl Component {
    fn crypt(&self) -> Result<MsgCrypt, String> {
        let shaped =
            self.encoding_aes_key.len() == 43 && self.encoding_aes_key.bytes().all(|b| b.is_ascii_alphanumeric());
        if !shaped {
            return Err(format!("component {}: encoding_aes_key must be 43 characters [a-zA-Z0-9]", self.appid));
        }
        MsgCrypt::new(&self.token, &self.encoding_aes_key, &self.appid)
            .map_err(|e| format!("component {}: {e}", self.appid))
    }

    /// What serde cannot check: a usable key.
    pub(crate) fn validate(&self) -> Result<(), String> {
        self.crypt().map(drop)
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A push as WeChat sends it to the authorisation-event URL: the query string to append to the URL and the XML body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformPush {
    /// `signature=…&timestamp=…&nonce=…&encrypt_type=aes&msg_signature=…`
    pub query: String,
    /// `<xml><AppId><![CDATA[…]]></AppId><Encrypt><![CDATA[…]]></Encrypt></xml>`
    pub body: String,
}

impl PlatformPush {
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// The push as an API Gateway HTTP API (payload 2.0) hands it to the function on a route without
    /// authorisation (`POST /wechat/authorization-events`): what a deployed function receives from WeChat.
    pub fn http_api_event(&self) -> serde_json::Value {
        let params: HashMap<String, String> = form_urlencoded::parse(self.query.as_bytes()).into_owned().collect();
        let path = "/wechat/authorization-events";
        serde_json::json!({
            "version": "2.0",
            "routeKey": format!("POST {path}"),
            "rawPath": path,
            "rawQueryString": self.query,
            "queryStringParameters": params,
            "headers": {"content-type": "text/xml", "user-agent": "Mozilla/4.0"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "domainName": "abc123.execute-api.ap-east-1.amazonaws.com",
                "domainPrefix": "abc123",
                "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "101.226.103.10",
                         "userAgent": "Mozilla/4.0"},
                "requestId": "wechat-push",
                "routeKey": format!("POST {path}"),
                "stage": "$default",
                "time": "22/Nov/2026:00:00:00 +0000",
                "timeEpoch": 1_763_800_000_000_u64
            },
            "body": self.body,
            "isBase64Encoded": false
        })
    }
}

/// Why a scripted platform change could not be made (an unknown platform or mini program).
pub(crate) type Refusal = String;

/// The platform side of the emulator's state: reset with the rest.
#[derive(Debug, Default)]
pub(crate) struct Platform {
    components: HashMap<String, ComponentState>,
    /// Live and dead component tokens: component appid and expiry.
    component_tokens: HashMap<String, (String, i64)>,
    /// Which platform and mini program each authorizer token minted through the platform belongs to.
    minted: HashMap<String, (String, String)>,
}

#[derive(Debug, Default)]
struct ComponentState {
    /// Oldest first.
    tickets: Vec<Ticket>,
    authorizations: BTreeMap<String, Authorization>,
    codes: HashMap<String, AuthCode>,
}

#[derive(Debug)]
struct Ticket {
    value: String,
    issued_at: i64,
}

#[derive(Debug)]
struct Authorization {
    refresh_token: String,
    /// A rotated refresh token and the moment it stops working.
    previous_refresh: Option<(String, i64)>,
    func_ids: Vec<u32>,
    auth_time: i64,
    revoked: bool,
}

impl Authorization {
    fn accepts(&self, refresh_token: &str, now: i64) -> bool {
        self.refresh_token == refresh_token
            || self.previous_refresh.as_ref().is_some_and(|(old, until)| old == refresh_token && now < *until)
    }
}

#[derive(Debug)]
struct AuthCode {
    authorizer: String,
    expires_at: i64,
}

fn random(prefix: &str, len: usize) -> String {
    format!("{prefix}{}", Alphanumeric.sample_string(&mut rand::rng(), len))
}

/// A push ready to hand out, and where to deliver it if the platform has a URL.
pub(crate) struct Outgoing {
    pub push: PlatformPush,
    pub push_url: Option<String>,
}

impl Outgoing {
    /// Delivers the push (if there is a URL) and gives it.
    pub(crate) fn send(self) -> PlatformPush {
        if let Some(url) = self.push_url {
            deliver(url, self.push.clone());
        }
        self.push
    }
}

fn component<'w>(world: &'w World, appid: &str) -> Result<&'w Component, Refusal> {
    world.component(appid).ok_or_else(|| format!("{appid} is not a third-party platform of the emulator"))
}

/// Encrypts and signs `inner_xml` for `component_appid`, as WeChat pushes it at virtual time `now`.
pub(crate) fn seal(world: &World, component_appid: &str, inner_xml: &str, now: i64) -> Result<Outgoing, Refusal> {
    let c = component(world, component_appid)?;
    let crypt = c.crypt()?;
    let timestamp = now.to_string();
    let nonce = rand::random_range(100_000_000u32..=u32::MAX).to_string();
    let encrypt = crypt.encrypt(inner_xml);
    let msg_signature = crypt.msg_signature(&timestamp, &nonce, &encrypt);
    let signature = crypt::signature(&mut [c.token.as_str(), &timestamp, &nonce]);
    let push = PlatformPush {
        query: format!(
            "signature={signature}&timestamp={timestamp}&nonce={nonce}&encrypt_type=aes&msg_signature={msg_signature}"
        ),
        body: format!("<xml><AppId><![CDATA[{}]]></AppId><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>", c.appid),
    };
    Ok(Outgoing { push, push_url: c.push_url.clone() })
}

/// A new ticket for `component_appid` (each one distinct), and its push.
pub(crate) fn issue_ticket(state: &mut State, component_appid: &str) -> Result<Outgoing, Refusal> {
    component(&state.world, component_appid)?;
    let now = state.clock.now();
    let value = random("ticket@@@", 86);
    let tickets = &mut state.platform.components.entry(component_appid.to_owned()).or_default().tickets;
    if tickets.len() == TICKETS_KEPT {
        tickets.remove(0);
    }
    tickets.push(Ticket { value: value.clone(), issued_at: now });
    let inner = format!(
        "<xml><AppId><![CDATA[{component_appid}]]></AppId><CreateTime>{now}</CreateTime>\
         <InfoType><![CDATA[component_verify_ticket]]></InfoType>\
         <ComponentVerifyTicket><![CDATA[{value}]]></ComponentVerifyTicket></xml>"
    );
    seal(&state.world, component_appid, &inner, now)
}

/// The newest ticket pushed to `component_appid`, young or not.
pub(crate) fn current_ticket(state: &State, component_appid: &str) -> Option<String> {
    state.platform.components.get(component_appid)?.tickets.last().map(|t| t.value.clone())
}

/// `authorizer` authorises (or re-authorises) `component_appid` for `func_ids`: a new authorisation code, and on
/// re-authorisation a new refresh token with the old one and the authorizer's access tokens dead at once.
pub(crate) fn authorize(
    state: &mut State,
    component_appid: &str,
    authorizer: &str,
    func_ids: &[u32],
) -> Result<Outgoing, Refusal> {
    component(&state.world, component_appid)?;
    if state.world.account(authorizer).is_none_or(|a| a.plugin.is_some()) {
        return Err(format!("{authorizer} is not a mini program of the emulator"));
    }
    let now = state.clock.now();
    let updated = live(state, component_appid, authorizer).is_some();
    revoke_access_tokens(state, component_appid, authorizer, now);
    let mut granted: Vec<u32> = Vec::with_capacity(func_ids.len());
    for id in func_ids {
        if !granted.contains(id) {
            granted.push(*id);
        }
    }
    let code = random("queryauthcode@@@", 86);
    let expires_at = now + AUTH_CODE_TTL_SECS;
    let cs = state.platform.components.entry(component_appid.to_owned()).or_default();
    // Only the newest code of an authorizer can be exchanged.
    cs.codes.retain(|_, c| c.authorizer != authorizer);
    cs.codes.insert(code.clone(), AuthCode { authorizer: authorizer.to_owned(), expires_at });
    cs.authorizations.insert(
        authorizer.to_owned(),
        Authorization {
            refresh_token: random("refreshtoken@@@", 64),
            previous_refresh: None,
            func_ids: granted,
            auth_time: now,
            revoked: false,
        },
    );
    let info_type = if updated { "updateauthorized" } else { "authorized" };
    let pre_auth_code = random("preauthcode@@@", 64);
    let inner = format!(
        "<xml><AppId><![CDATA[{component_appid}]]></AppId><CreateTime>{now}</CreateTime>\
         <InfoType><![CDATA[{info_type}]]></InfoType><AuthorizerAppid><![CDATA[{authorizer}]]></AuthorizerAppid>\
         <AuthorizationCode><![CDATA[{code}]]></AuthorizationCode>\
         <AuthorizationCodeExpiredTime>{expires_at}</AuthorizationCodeExpiredTime>\
         <PreAuthCode><![CDATA[{pre_auth_code}]]></PreAuthCode></xml>"
    );
    seal(&state.world, component_appid, &inner, now)
}

/// `authorizer` withdraws its authorisation of `component_appid`: its refresh token, codes and access tokens die.
pub(crate) fn revoke(state: &mut State, component_appid: &str, authorizer: &str) -> Result<Outgoing, Refusal> {
    component(&state.world, component_appid)?;
    let now = state.clock.now();
    revoke_access_tokens(state, component_appid, authorizer, now);
    let cs = state.platform.components.entry(component_appid.to_owned()).or_default();
    cs.codes.retain(|_, c| c.authorizer != authorizer);
    if let Some(a) = cs.authorizations.get_mut(authorizer) {
        a.revoked = true;
        a.previous_refresh = None;
    }
    let inner = format!(
        "<xml><AppId><![CDATA[{component_appid}]]></AppId><CreateTime>{now}</CreateTime>\
         <InfoType><![CDATA[unauthorized]]></InfoType>\
         <AuthorizerAppid><![CDATA[{authorizer}]]></AuthorizerAppid></xml>"
    );
    seal(&state.world, component_appid, &inner, now)
}

/// WeChat changes the refresh token; the old one keeps working [`REFRESH_GRACE_SECS`]. Gives the new one.
pub(crate) fn rotate_refresh_token(
    state: &mut State,
    component_appid: &str,
    authorizer: &str,
) -> Result<String, Refusal> {
    let now = state.clock.now();
    let a = state
        .platform
        .components
        .get_mut(component_appid)
        .and_then(|cs| cs.authorizations.get_mut(authorizer))
        .filter(|a| !a.revoked)
        .ok_or_else(|| format!("{authorizer} has not authorised {component_appid}"))?;
    let new = random("refreshtoken@@@", 64);
    let old = std::mem::replace(&mut a.refresh_token, new.clone());
    a.previous_refresh = Some((old, now + REFRESH_GRACE_SECS));
    Ok(new)
}

/// The live authorisation's current refresh token.
pub(crate) fn refresh_token(state: &State, component_appid: &str, authorizer: &str) -> Option<String> {
    live(state, component_appid, authorizer).map(|a| a.refresh_token.clone())
}

fn live<'s>(state: &'s State, component_appid: &str, authorizer: &str) -> Option<&'s Authorization> {
    state.platform.components.get(component_appid)?.authorizations.get(authorizer).filter(|a| !a.revoked)
}

fn revoke_access_tokens(state: &mut State, component_appid: &str, authorizer: &str, now: i64) {
    for (token, (c, a)) in &state.platform.minted {
        if c == component_appid && a == authorizer {
            state.tokens.revoke(token, now);
        }
    }
}

fn mint_authorizer_token(state: &mut State, component_appid: &str, authorizer: &str, now: i64) -> String {
    let ttl = state.world.settings.token_ttl_secs;
    let token = state.tokens.mint_authorizer(authorizer, now, ttl);
    state.platform.minted.insert(token.clone(), (component_appid.to_owned(), authorizer.to_owned()));
    token
}

/// A plugin call made with an authorizer token minted through the platform needs permission set 40 (61007).
/// Tokens minted by [`super::Emulator::authorizer_token`] stand outside any authorisation and pass.
pub(crate) fn check_plugin_call(state: &State, token: &str) -> Result<(), WxError> {
    let Some((component_appid, authorizer)) = state.platform.minted.get(token) else {
        return Ok(());
    };
    match live(state, component_appid, authorizer) {
        Some(a) if a.func_ids.contains(&PLUGIN_FUNC_SET) => Ok(()),
        Some(_) => Err(WxError::new(codes::API_UNAUTHORIZED_TO_COMPONENT)),
        // Revocation already killed the token; this is only reached if something else kept it alive.
        None => Err(WxError::new(codes::INVALID_CREDENTIAL)),
    }
}

/// The component endpoints the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    ComponentToken,
    StartPushTicket,
    QueryAuth,
    AuthorizerToken,
    AuthorizerList,
}

impl Endpoint {
    fn from_path(path: &str) -> Option<Endpoint> {
        Some(match path.strip_prefix("/cgi-bin/component/")? {
            "api_component_token" => Endpoint::ComponentToken,
            "api_start_push_ticket" => Endpoint::StartPushTicket,
            "api_query_auth" => Endpoint::QueryAuth,
            "api_authorizer_token" => Endpoint::AuthorizerToken,
            "api_get_authorizer_list" => Endpoint::AuthorizerList,
            _ => return None,
        })
    }
}

/// The component endpoints, or `None` for a path that is not one.
pub(crate) fn answer(
    state: &mut State,
    method: &Method,
    path: &str,
    query: &str,
    body: &[u8],
    now: i64,
) -> Option<Result<Value, WxError>> {
    let endpoint = Endpoint::from_path(path)?;
    Some(call(state, method, endpoint, query, body, now))
}

fn call(
    state: &mut State,
    method: &Method,
    endpoint: Endpoint,
    query: &str,
    body: &[u8],
    now: i64,
) -> Result<Value, WxError> {
    if method != Method::POST {
        return Err(WxError::new(codes::REQUIRE_POST));
    }
    match endpoint {
        Endpoint::ComponentToken => return component_token(state, &json_object(body)?, now),
        Endpoint::StartPushTicket => return start_push_ticket(state, &json_object(body)?),
        Endpoint::QueryAuth | Endpoint::AuthorizerToken | Endpoint::AuthorizerList => {}
    }
    // The token comes first, as on every WeChat API that takes one.
    let holder = component_token_holder(state, query, now)?;
    let body = json_object(body)?;
    let c = identify(&state.world, &body)?;
    reachable(c)?;
    if c.appid != holder {
        return Err(WxError::hinted(codes::INVALID_CREDENTIAL, "the token belongs to another component"));
    }
    let appid = c.appid.clone();
    match endpoint {
        Endpoint::QueryAuth => query_auth(state, &appid, &body, now),
        Endpoint::AuthorizerToken => authorizer_token(state, &appid, &body, now),
        _ => authorizer_list(state, &appid, &body),
    }
}

/// The platform a body's `component_appid` names: 40013 when it is missing or not shaped like an appid, 61011 when
/// no platform has it.
fn identify<'w>(world: &'w World, body: &Map<String, Value>) -> Result<&'w Component, WxError> {
    let appid = body.get("component_appid").and_then(Value::as_str).unwrap_or_default();
    let shaped =
        appid.starts_with("wx") && (16..=18).contains(&appid.len()) && appid.bytes().all(|b| b.is_ascii_alphanumeric());
    if !shaped {
        return Err(WxError::hinted(codes::INVALID_APPID, "component_appid"));
    }
    world.component(appid).ok_or(WxError::new(codes::INVALID_COMPONENT))
}

fn reachable(c: &Component) -> Result<(), WxError> {
    if c.ip_whitelist_blocks {
        return Err(WxError::hinted(codes::COMPONENT_IP_NOT_REGISTERED, "ipv4 127.0.0.1"));
    }
    Ok(())
}

/// Checks the secret under `field`: 41004 when missing, 40125 when wrong; then the whitelist.
fn authenticate(c: &Component, body: &Map<String, Value>, field: &str) -> Result<(), WxError> {
    let secret = body.get(field).and_then(Value::as_str).filter(|s| !s.is_empty());
    let secret = secret.ok_or(WxError::new(codes::APPSECRET_MISSING))?;
    if secret != c.secret {
        return Err(WxError::new(codes::INVALID_APPSECRET));
    }
    reachable(c)
}

fn component_token(state: &mut State, body: &Map<String, Value>, now: i64) -> Result<Value, WxError> {
    let c = identify(&state.world, body)?;
    authenticate(c, body, "component_appsecret")?;
    let appid = c.appid.clone();
    let ticket = body.get("component_verify_ticket").and_then(Value::as_str).filter(|s| !s.is_empty());
    let ticket = ticket.ok_or(WxError::hinted(codes::COMPONENT_TICKET_INVALID, "component_verify_ticket missing"))?;
    let issued_at = state
        .platform
        .components
        .get(&appid)
        .and_then(|cs| cs.tickets.iter().find(|t| t.value == ticket))
        .map(|t| t.issued_at)
        .ok_or(WxError::new(codes::COMPONENT_TICKET_INVALID))?;
    if now - issued_at >= TICKET_TTL_SECS {
        return Err(WxError::new(codes::COMPONENT_TICKET_EXPIRED));
    }
    // A new component token leaves the earlier ones alive until their own expiry (spec §13 Q7 is unsettled).
    let ttl = state.world.settings.token_ttl_secs;
    let token = random("61_", 126);
    state.platform.component_tokens.insert(token.clone(), (appid, now + ttl));
    state.tokens.note_issued(&token);
    Ok(json!({ "component_access_token": token, "expires_in": ttl }))
}

/// The platform a component token belongs to: 41001 missing, 40014 malformed, 40001 unknown, 42001 expired. Both
/// query names are accepted: the new documents write `access_token`, the SDKs `component_access_token`.
fn component_token_holder(state: &State, query: &str, now: i64) -> Result<String, WxError> {
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let token = params.get("component_access_token").or_else(|| params.get("access_token")).map(String::as_str);
    let token = token.filter(|t| !t.is_empty()).ok_or(WxError::new(codes::ACCESS_TOKEN_MISSING))?;
    if !well_formed(token) {
        return Err(WxError::new(codes::INVALID_ACCESS_TOKEN));
    }
    let (appid, expires_at) =
        state.platform.component_tokens.get(token).ok_or(WxError::new(codes::INVALID_CREDENTIAL))?;
    if *expires_at <= now {
        return Err(WxError::new(codes::ACCESS_TOKEN_EXPIRED));
    }
    Ok(appid.clone())
}

fn start_push_ticket(state: &mut State, body: &Map<String, Value>) -> Result<Value, WxError> {
    let c = identify(&state.world, body)?;
    authenticate(c, body, "component_secret")?;
    let appid = c.appid.clone();
    // The emulator pushes at once: WeChat's documents do not say when the restarted service pushes.
    issue_ticket(state, &appid).map_err(|e| WxError::hinted(codes::INVALID_COMPONENT, e))?.send();
    Ok(json!({ "errcode": 0, "errmsg": "ok" }))
}

fn query_auth(state: &mut State, appid: &str, body: &Map<String, Value>, now: i64) -> Result<Value, WxError> {
    let code = body.get("authorization_code").and_then(Value::as_str).unwrap_or_default();
    let cs = state.platform.components.entry(appid.to_owned()).or_default();
    let pending = cs.codes.get(code).ok_or(WxError::new(codes::AUTH_CODE_INVALID))?;
    // An expired code stays known, so it keeps answering 61010 rather than 61009.
    if pending.expires_at <= now {
        return Err(WxError::new(codes::AUTH_CODE_EXPIRED));
    }
    let authorizer = pending.authorizer.clone();
    cs.codes.remove(code);
    let (refresh_token, func_ids) = match live(state, appid, &authorizer) {
        Some(a) => (a.refresh_token.clone(), a.func_ids.clone()),
        None => return Err(WxError::new(codes::AUTH_CODE_INVALID)),
    };
    let token = mint_authorizer_token(state, appid, &authorizer, now);
    let func_info: Vec<Value> = func_ids.iter().map(|id| json!({ "funcscope_category": { "id": id } })).collect();
    Ok(json!({
        "authorization_info": {
            "authorizer_appid": authorizer,
            "authorizer_access_token": token,
            "expires_in": state.world.settings.token_ttl_secs,
            "authorizer_refresh_token": refresh_token,
            "func_info": func_info,
        }
    }))
}

fn authorizer_token(state: &mut State, appid: &str, body: &Map<String, Value>, now: i64) -> Result<Value, WxError> {
    let authorizer = body.get("authorizer_appid").and_then(Value::as_str).filter(|s| !s.is_empty());
    let authorizer =
        authorizer.ok_or(WxError::hinted(codes::DATA_FORMAT_ERROR, "authorizer_appid missing or not a string"))?;
    let a = live(state, appid, authorizer).ok_or(WxError::new(codes::COMPONENT_NOT_AUTHORIZED))?;
    // `null`, a number, a wrong or a rotated-and-expired token: all 61023.
    let offered = body.get("authorizer_refresh_token").and_then(Value::as_str).unwrap_or_default();
    if !a.accepts(offered, now) {
        return Err(WxError::new(codes::REFRESH_TOKEN_INVALID));
    }
    let current = a.refresh_token.clone();
    // Earlier authorizer tokens stay alive until their own expiry (spec §13 Q3 is unsettled).
    let token = mint_authorizer_token(state, appid, authorizer, now);
    Ok(json!({
        "authorizer_access_token": token,
        "expires_in": state.world.settings.token_ttl_secs,
        "authorizer_refresh_token": current,
    }))
}

fn authorizer_list(state: &State, appid: &str, body: &Map<String, Value>) -> Result<Value, WxError> {
    let offset = body.get("offset").and_then(Value::as_i64).filter(|n| *n >= 0);
    let offset = offset.ok_or(WxError::hinted(codes::DATA_FORMAT_ERROR, "offset must be an integer from 0"))?;
    let count = body.get("count").and_then(Value::as_i64).filter(|n| (1..=MAX_LIST_COUNT).contains(n));
    let count = count.ok_or(WxError::hinted(codes::DATA_FORMAT_ERROR, "count must be an integer from 1 to 500"))?;
    let mut live: Vec<(&String, &Authorization)> = state
        .platform
        .components
        .get(appid)
        .map(|cs| cs.authorizations.iter().filter(|(_, a)| !a.revoked).collect())
        .unwrap_or_default();
    live.sort_by(|x, y| x.1.auth_time.cmp(&y.1.auth_time).then_with(|| x.0.cmp(y.0)));
    let list: Vec<Value> = live
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(count).unwrap_or(usize::MAX))
        .map(|(authorizer, a)| {
            json!({ "authorizer_appid": authorizer, "refresh_token": a.refresh_token, "auth_time": a.auth_time })
        })
        .collect();
    Ok(json!({ "total_count": live.len(), "list": list }))
}

/// A summary for the state dump: per platform, its ticket count and newest ticket, and its authorisations (refresh
/// tokens, permission sets, revocation).
pub(crate) fn snapshot(state: &State) -> Value {
    let mut out = Map::new();
    let mut appids: Vec<&String> = state.platform.components.keys().collect();
    appids.sort();
    for appid in appids {
        let cs = &state.platform.components[appid];
        let authorizations: Map<String, Value> = cs
            .authorizations
            .iter()
            .map(|(who, a)| {
                let summary = json!({
                    "refresh_token": a.refresh_token,
                    "func_ids": a.func_ids,
                    "auth_time": a.auth_time,
                    "revoked": a.revoked,
                });
                (who.clone(), summary)
            })
            .collect();
        let summary = json!({
            "tickets_pushed": cs.tickets.len(),
            "current_ticket": cs.tickets.last().map(|t| &t.value),
            "authorizations": authorizations,
            "pending_codes": cs.codes.len(),
        });
        out.insert(appid.clone(), summary);
    }
    Value::Object(out)
}

/// POSTs `push` to `url` on a thread of its own, as WeChat does: a 5 s timeout, the bare string `success` expected.
/// Failures are only logged: WeChat does not tell the platform either.
pub(crate) fn deliver(url: String, push: PlatformPush) {
    let spawned = std::thread::Builder::new().name("wechat-emulator-push".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => return eprintln!("wechat emulator: cannot push to {url}: {e}"),
        };
        runtime.block_on(async move {
            let separator = if url.contains('?') { '&' } else { '?' };
            let target = format!("{url}{separator}{}", push.query);
            let client = match reqwest::Client::builder().timeout(PUSH_TIMEOUT).build() {
                Ok(client) => client,
                Err(e) => return eprintln!("wechat emulator: cannot push to {url}: {e}"),
            };
            let sent = client
                .post(&target)
                .header(http::header::CONTENT_TYPE, "text/xml")
                .header(http::header::USER_AGENT, "Mozilla/4.0")
                .body(push.body)
                .send()
                .await;
            match sent {
                Ok(reply) => {
                    let status = reply.status();
                    let text = reply.text().await.unwrap_or_default();
                    if !status.is_success() || text.trim() != "success" {
                        eprintln!("wechat emulator: push to {url} answered {status} {text:?}, not `success`");
                    }
                }
                Err(e) => eprintln!("wechat emulator: push to {url} failed: {e}"),
            }
        })
    });
    if let Err(e) = spawned {
        eprintln!("wechat emulator: cannot start a push thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::{DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID, DEMO_COMPONENT_SECRET, DEMO_COMPONENT_TOKEN};
    use crate::platform::push::{self, Push, Signed};

    fn state() -> State {
        State::new(World::builtin())
    }

    fn open(p: &PlatformPush) -> Push {
        let crypt = MsgCrypt::new(DEMO_COMPONENT_TOKEN, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID).unwrap();
        let (sig, ts, nonce) = (
            p.query_param("msg_signature").unwrap(),
            p.query_param("timestamp").unwrap(),
            p.query_param("nonce").unwrap(),
        );
        push::open(&[&crypt], &Signed { msg_signature: &sig, timestamp: &ts, nonce: &nonce }, &p.body).unwrap()
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
        assert!(world.validate().unwrap_err().contains("43 characters"));
        let mut world = World::builtin();
        world.components[0].encoding_aes_key.replace_range(0..1, "+");
        assert!(world.validate().is_err());
        let mut world = World::builtin();
        world.components.push(world.components[0].clone());
        assert!(world.validate().unwrap_err().contains("twice"));
    }

    #[test]
    fn a_state_file_without_components_still_loads() {
        let world: World = serde_json::from_str(r#"{"accounts": []}"#).unwrap();
        assert!(world.components.is_empty());
    }

    #[test]
    fn each_ticket_push_carries_a_new_ticket_that_the_push_reader_accepts() {
        let mut state = state();
        let first = issue_ticket(&mut state, DEMO_COMPONENT_APPID).unwrap().push;
        let second = issue_ticket(&mut state, DEMO_COMPONENT_APPID).unwrap().push;
        let (Push::Ticket { ticket: a, .. }, Push::Ticket { ticket: b, .. }) = (open(&first), open(&second)) else {
            panic!("not tickets");
        };
        assert_ne!(a, b);
        assert_eq!(current_ticket(&state, DEMO_COMPONENT_APPID), Some(b));
        assert!(issue_ticket(&mut state, "wxdemo0000000001").is_err(), "a mini program is no platform");
    }

    #[test]
    fn a_rotated_refresh_token_is_accepted_strictly_before_its_grace_ends() {
        let a = Authorization {
            refresh_token: "new".into(),
            previous_refresh: Some(("old".into(), 1_300)),
            func_ids: vec![PLUGIN_FUNC_SET],
            auth_time: 1_000,
            revoked: false,
        };
        assert!(a.accepts("new", 5_000));
        assert!(a.accepts("old", 1_299));
        assert!(!a.accepts("old", 1_300));
        assert!(!a.accepts("", 1_000));
    }

    #[test]
    fn only_mini_programs_can_authorise_and_re_authorising_says_updateauthorized() {
        let mut state = state();
        assert!(authorize(&mut state, DEMO_COMPONENT_APPID, "wxplugin00000001", &[40]).is_err());
        assert!(authorize(&mut state, DEMO_COMPONENT_APPID, "wxnobody00000001", &[40]).is_err());
        let first = authorize(&mut state, DEMO_COMPONENT_APPID, "wxdemo0000000001", &[40, 40, 17]).unwrap().push;
        assert!(matches!(open(&first), Push::Authorized { updated: false, .. }));
        let again = authorize(&mut state, DEMO_COMPONENT_APPID, "wxdemo0000000001", &[40]).unwrap().push;
        assert!(matches!(open(&again), Push::Authorized { updated: true, .. }));
        let summary = snapshot(&state);
        assert_eq!(summary[DEMO_COMPONENT_APPID]["authorizations"]["wxdemo0000000001"]["func_ids"], json!([40]));
        assert_eq!(summary[DEMO_COMPONENT_APPID]["pending_codes"], 1, "only the newest code is kept");
    }
}
