//! WeChat's token endpoints (`/cgi-bin/token`, `/cgi-bin/stable_token`): the request checks and the credentials; the
//! tokens themselves are the ledger's (`tokens`).

use std::collections::HashMap;

use http::Method;
use serde_json::{json, Value};

use super::state::State;
use super::wire::{json_object, require_post, WxError};
use super::world::World;
use wechat_wire::codes;

pub(crate) fn classic_token(state: &mut State, method: &Method, query: &str, now: i64) -> Result<Value, WxError> {
    if method != Method::GET {
        return Err(WxError::new(codes::REQUIRE_GET));
    }
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let get = |k: &str| params.get(k).map(String::as_str);
    let appid = authenticate(&state.world, get("grant_type"), get("appid"), get("secret"))?;
    let issued = state.tokens.classic(&appid, now, &state.world.settings)?;
    Ok(json!({ "access_token": issued.access_token, "expires_in": issued.expires_in }))
}

pub(crate) fn stable_token(state: &mut State, method: &Method, body: &[u8], now: i64) -> Result<Value, WxError> {
    require_post(method)?;
    let body = json_object(body)?;
    let get = |k: &str| body.get(k).and_then(Value::as_str);
    let appid = authenticate(&state.world, get("grant_type"), get("appid"), get("secret"))?;
    let force_refresh = match body.get("force_refresh") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(WxError::hinted(codes::DATA_FORMAT_ERROR, "force_refresh must be a boolean")),
    };
    let issued = state.tokens.stable(&appid, force_refresh, now, &state.world.settings)?;
    Ok(json!({ "access_token": issued.access_token, "expires_in": issued.expires_in }))
}

/// Checks a token request's credentials; gives the appid they belong to.
fn authenticate(
    world: &World,
    grant_type: Option<&str>,
    appid: Option<&str>,
    secret: Option<&str>,
) -> Result<String, WxError> {
    if grant_type != Some("client_credential") {
        return Err(WxError::new(codes::INVALID_GRANT_TYPE));
    }
    let appid = appid.filter(|s| !s.is_empty()).ok_or(WxError::new(codes::APPID_MISSING))?;
    let secret = secret.filter(|s| !s.is_empty()).ok_or(WxError::new(codes::APPSECRET_MISSING))?;
    if world.component(appid).is_some() {
        return Err(WxError::new(codes::MUST_USE_COMPONENT_TOKEN));
    }
    let account = world.account(appid).ok_or(WxError::new(codes::INVALID_APPID))?;
    if account.secret != secret {
        return Err(WxError::new(codes::INVALID_APPSECRET));
    }
    if account.secret_frozen {
        return Err(WxError::new(codes::SECRET_FROZEN));
    }
    if account.ip_whitelist_blocks {
        return Err(WxError::hinted(codes::IP_NOT_WHITELISTED, "ipv4 127.0.0.1"));
    }
    Ok(account.appid.clone())
}
