//! WeChat's component endpoints (`/cgi-bin/component/…`): the component token, `api_start_push_ticket`, the
//! authorisation-code exchange, the authorizer tokens and the authorizer list.

use std::collections::HashMap;

use http::Method;
use serde_json::{json, Map, Value};

use super::desk::random;
use super::platform::{issue_ticket, mint_authorizer_token, TICKET_TTL_SECS};
use super::state::State;
use super::tokens::well_formed;
use super::wire::{json_object, require_post, WxError};
use super::world::{Component, World};
use wechat_wire::codes;

/// The largest `count` `api_get_authorizer_list` accepts.
pub const MAX_LIST_COUNT: i64 = 500;

/// The component endpoints the emulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ComponentEndpoint {
    ComponentToken,
    StartPushTicket,
    QueryAuth,
    AuthorizerToken,
    AuthorizerList,
}

impl ComponentEndpoint {
    fn from_path(path: &str) -> Option<ComponentEndpoint> {
        Some(match path.strip_prefix("/cgi-bin/component/")? {
            "api_component_token" => ComponentEndpoint::ComponentToken,
            "api_start_push_ticket" => ComponentEndpoint::StartPushTicket,
            "api_query_auth" => ComponentEndpoint::QueryAuth,
            "api_authorizer_token" => ComponentEndpoint::AuthorizerToken,
            "api_get_authorizer_list" => ComponentEndpoint::AuthorizerList,
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
    let endpoint = ComponentEndpoint::from_path(path)?;
    Some(call(state, method, endpoint, query, body, now))
}

fn call(
    state: &mut State,
    method: &Method,
    endpoint: ComponentEndpoint,
    query: &str,
    body: &[u8],
    now: i64,
) -> Result<Value, WxError> {
    require_post(method)?;
    match endpoint {
        ComponentEndpoint::ComponentToken => return component_token(state, &json_object(body)?, now),
        ComponentEndpoint::StartPushTicket => return start_push_ticket(state, &json_object(body)?),
        ComponentEndpoint::QueryAuth | ComponentEndpoint::AuthorizerToken | ComponentEndpoint::AuthorizerList => {}
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
        ComponentEndpoint::QueryAuth => query_auth(state, &appid, &body, now),
        ComponentEndpoint::AuthorizerToken => authorizer_token(state, &appid, &body, now),
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
    issue_ticket(state, &appid).map_err(|e| WxError::hinted(codes::INVALID_COMPONENT, e.to_string()))?.send();
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
    let (refresh_token, func_ids) = match state.platform.live(appid, &authorizer) {
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
    let a = state.platform.live(appid, authorizer).ok_or(WxError::new(codes::COMPONENT_NOT_AUTHORIZED))?;
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
    let Some(cs) = state.platform.components.get(appid) else {
        return Ok(json!({ "total_count": 0, "list": [] }));
    };
    let (offset, count) = (usize::try_from(offset).unwrap_or(usize::MAX), usize::try_from(count).unwrap_or(0));
    let list: Vec<Value> = cs
        .live_page(offset, count)
        .map(|(authorizer, a)| {
            json!({ "authorizer_appid": authorizer, "refresh_token": a.refresh_token, "auth_time": a.auth_time })
        })
        .collect();
    Ok(json!({ "total_count": cs.live_count(), "list": list }))
}
