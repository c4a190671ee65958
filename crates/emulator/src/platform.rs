//! The emulator as WeChat's open platform (第三方平台), the events WeChat starts: component_verify_ticket pushes,
//! authorisation, its withdrawal and refresh-token rotation, and what they do to the authorizer tokens. WeChat's
//! component endpoints are in `component_api`.
//!
//! Pushes happen only when asked for (a test, the control endpoint, `api_start_push_ticket`): the emulator keeps no
//! ten-minute timer, so a test decides when a ticket arrives.

use super::desk::{random, AuthCode, Grant, PushedTicket, PLUGIN_FUNC_SET};
use super::invalid::Invalid;
use super::pushes::{component, seal, Outgoing, Refusal};
use super::state::State;
use super::wire::WxError;
use wechat_wire::codes;

/// How long a pushed component_verify_ticket can mint component tokens.
pub const TICKET_TTL_SECS: i64 = 12 * 3600;
/// How long an authorisation code can be exchanged with `api_query_auth`.
pub const AUTH_CODE_TTL_SECS: i64 = 3600;
/// How long a rotated refresh token keeps working (WeChat staff: "5分钟的过渡期").
pub const REFRESH_GRACE_SECS: i64 = 300;
/// Tickets kept per platform: a ticket pushed this long ago is far past its 12 h anyway.
const TICKETS_KEPT: usize = 1_000;

/// A new ticket for `component_appid` (each one distinct), and its push.
pub(crate) fn issue_ticket(state: &mut State, component_appid: &str) -> Result<Outgoing, Refusal> {
    component(&state.world, component_appid)?;
    let now = state.clock.now();
    let value = random("ticket@@@", 86);
    let tickets = &mut state.platform.components.entry(component_appid.to_owned()).or_default().tickets;
    if tickets.len() == TICKETS_KEPT {
        tickets.remove(0);
    }
    tickets.push(PushedTicket { value: value.clone(), issued_at: now });
    let inner = format!(
        "<xml><AppId><![CDATA[{component_appid}]]></AppId><CreateTime>{now}</CreateTime>\
         <InfoType><![CDATA[component_verify_ticket]]></InfoType>\
         <ComponentVerifyTicket><![CDATA[{value}]]></ComponentVerifyTicket></xml>"
    );
    seal(&state.world, component_appid, &inner, now)
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
        return Err(Invalid::Request(format!("{authorizer} is not a mini program of the emulator")));
    }
    let now = state.clock.now();
    let updated = state.platform.live(component_appid, authorizer).is_some();
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
    cs.grant(authorizer, Grant::new(granted, now));
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
    cs.withdraw(authorizer);
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
        .and_then(|cs| cs.grant_mut(authorizer))
        .filter(|a| !a.revoked)
        .ok_or_else(|| Invalid::Request(format!("{authorizer} has not authorised {component_appid}")))?;
    let new = random("refreshtoken@@@", 64);
    let old = std::mem::replace(&mut a.refresh_token, new.clone());
    a.previous_refresh = Some((old, now + REFRESH_GRACE_SECS));
    Ok(new)
}

/// The live authorisation's current refresh token.
pub(crate) fn refresh_token(state: &State, component_appid: &str, authorizer: &str) -> Option<String> {
    state.platform.live(component_appid, authorizer).map(|a| a.refresh_token.clone())
}

fn revoke_access_tokens(state: &mut State, component_appid: &str, authorizer: &str, now: i64) {
    for (token, (c, a)) in &state.platform.minted {
        if c == component_appid && a == authorizer {
            state.tokens.revoke(token, now);
        }
    }
}

pub(crate) fn mint_authorizer_token(state: &mut State, component_appid: &str, authorizer: &str, now: i64) -> String {
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
    match state.platform.live(component_appid, authorizer) {
        Some(a) if a.func_ids.contains(&PLUGIN_FUNC_SET) => Ok(()),
        Some(_) => Err(WxError::new(codes::API_UNAUTHORIZED_TO_COMPONENT)),
        // Revocation already killed the token; this is only reached if something else kept it alive.
        None => Err(WxError::new(codes::INVALID_CREDENTIAL)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::demo::{DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID, DEMO_COMPONENT_TOKEN};
    use crate::pushes::PlatformPush;
    use crate::world::World;
    use wechat_wire::crypt::MsgCrypt;

    fn state() -> State {
        State::new(World::builtin())
    }

    /// The push's XML, its signature checked and decrypted as a platform would (the function's own reading of it is
    /// in the root's tests, `emulator_platform`).
    fn open(p: &PlatformPush) -> String {
        let crypt = MsgCrypt::new(DEMO_COMPONENT_TOKEN, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID).unwrap();
        let encrypt = p.body.split("<Encrypt><![CDATA[").nth(1).and_then(|rest| rest.split("]]>").next()).unwrap();
        let param = |name| p.query_param(name).unwrap();
        crypt.open(&param("msg_signature"), &param("timestamp"), &param("nonce"), encrypt).unwrap()
    }

    /// The text of `<tag><![CDATA[…]]></tag>` in `xml`.
    fn field<'a>(xml: &'a str, tag: &str) -> &'a str {
        let open = format!("<{tag}><![CDATA[");
        xml.split(open.as_str()).nth(1).and_then(|rest| rest.split("]]>").next()).unwrap()
    }

    #[test]
    // Was `each_ticket_push_carries_a_new_ticket_that_the_push_reader_accepts`, which read the push with the function's
    // reader; the emulator no longer depends on the function, so it opens the push with the wire's WXBizMsgCrypt and
    // reads the XML. The function reading these pushes is tested in the function's suite (tests/emulator/platform.rs).
    fn each_ticket_push_carries_a_new_ticket_signed_and_encrypted_for_the_platform() {
        let mut state = state();
        let first = issue_ticket(&mut state, DEMO_COMPONENT_APPID).unwrap().push;
        let second = issue_ticket(&mut state, DEMO_COMPONENT_APPID).unwrap().push;
        let (first, second) = (open(&first), open(&second));
        assert_eq!(
            (field(&first, "InfoType"), field(&second, "InfoType")),
            ("component_verify_ticket", "component_verify_ticket")
        );
        let (a, b) =
            (field(&first, "ComponentVerifyTicket").to_owned(), field(&second, "ComponentVerifyTicket").to_owned());
        assert_ne!(a, b);
        assert_eq!(state.platform.current_ticket(DEMO_COMPONENT_APPID), Some(b));
        assert!(issue_ticket(&mut state, "wxdemo0000000001").is_err(), "a mini program is no platform");
    }

    #[test]
    fn only_mini_programs_can_authorise_and_re_authorising_says_updateauthorized() {
        let mut state = state();
        assert!(authorize(&mut state, DEMO_COMPONENT_APPID, "wxplugin00000001", &[40]).is_err());
        assert!(authorize(&mut state, DEMO_COMPONENT_APPID, "wxnobody00000001", &[40]).is_err());
        let first = authorize(&mut state, DEMO_COMPONENT_APPID, "wxdemo0000000001", &[40, 40, 17]).unwrap().push;
        assert_eq!(field(&open(&first), "InfoType"), "authorized");
        let again = authorize(&mut state, DEMO_COMPONENT_APPID, "wxdemo0000000001", &[40]).unwrap().push;
        assert_eq!(field(&open(&again), "InfoType"), "updateauthorized");
        let summary = state.platform.snapshot();
        assert_eq!(summary[DEMO_COMPONENT_APPID]["authorizations"]["wxdemo0000000001"]["func_ids"], json!([40]));
        assert_eq!(summary[DEMO_COMPONENT_APPID]["pending_codes"], 1, "only the newest code is kept");
    }
}
