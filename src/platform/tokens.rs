//! The platform's two kinds of token: its component token (bought with the newest ticket) and each mini program's
//! authorizer token (bought with its refresh token), both in [`crate::token::TokenCell`]s.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::api::{AUTHORIZER_TOKEN, COMPONENT_TOKEN};
use super::storage::stored;
use super::Platform;
use crate::clock::now_ms;
use crate::error::{sdk_codes, TokenError};
use crate::token::{issued, read_answer, Acquired, CachedToken};
use crate::wechat::WeChatClient;
use wechat_wire::codes;

/// How long "not authorised" is remembered for a mini program, so repeated calls do not each scan WeChat's list.
const NOT_AUTHORISED_MEMORY: Duration = Duration::from_secs(60);

/// `api_component_token`'s answer.
#[derive(Deserialize)]
struct ComponentToken {
    component_access_token: Option<String>,
    expires_in: Option<u64>,
}

/// `api_authorizer_token`'s answer: the token, and the refresh token, which WeChat may have rotated.
#[derive(Deserialize)]
struct AuthorizerToken {
    authorizer_access_token: Option<String>,
    expires_in: Option<u64>,
    authorizer_refresh_token: Option<String>,
}

/// The error that says a mini program must authorise the platform again: WeChat's code when WeChat said so.
fn reauthorise(authorizer: &str, component: &str, errcode: i64, why: &str) -> TokenError {
    let errmsg = format!(
        "mini program {authorizer} must authorise platform {component} again ({why}); until it does, nothing can be \
         done for it"
    );
    TokenError::Refused { errcode, errmsg }
}

impl Platform {
    /// The mini program `authorizer`'s access token, for plugin calls made on its behalf.
    pub async fn authorizer_token(
        &self,
        client: &WeChatClient,
        authorizer: &str,
        deadline: Instant,
    ) -> Result<(SecretString, Acquired), TokenError> {
        {
            let mut known = self.not_authorised.lock().unwrap_or_else(|p| p.into_inner());
            known.retain(|_, (at, _)| at.elapsed() < NOT_AUTHORISED_MEMORY);
            if let Some((_, e)) = known.get(authorizer) {
                return Err(e.clone());
            }
        }
        let got =
            self.cell(authorizer).get(deadline, || self.fetch_authorizer_token(client, authorizer, deadline)).await;
        if let Err(e) = &got {
            if matches!(e.err_code(), sdk_codes::NOT_AUTHORISED | codes::COMPONENT_NOT_AUTHORIZED) {
                let mut known = self.not_authorised.lock().unwrap_or_else(|p| p.into_inner());
                known.insert(authorizer.to_owned(), (Instant::now(), e.clone()));
            }
        }
        got
    }

    /// After WeChat refused `stale` for `authorizer`: see `crate::token::TokenCell::invalidate`.
    pub async fn invalidate_authorizer_token(&self, authorizer: &str, stale: &SecretString, deadline: Instant) {
        self.cell(authorizer).invalidate(stale, deadline).await
    }

    pub(super) async fn component_token(
        &self,
        client: &WeChatClient,
        deadline: Instant,
    ) -> Result<SecretString, TokenError> {
        Ok(self.component.get(deadline, || self.fetch_component_token(client, deadline)).await?.0)
    }

    async fn fetch_component_token(&self, client: &WeChatClient, deadline: Instant) -> Result<CachedToken, TokenError> {
        // Never ask without a ticket: WeChat answers a missing or `null` one with 61006, and counts the call.
        let Some(ticket) = self.ticket(deadline).await? else {
            return Err(TokenError::Refused {
                errcode: sdk_codes::NO_TICKET,
                errmsg: format!(
                    "no component_verify_ticket for platform {} yet: WeChat pushes one every 10 minutes to the \
                     authorisation-event URL (`wxpm platform start-push` asks it to resume)",
                    self.appid
                ),
            });
        };
        let body = json!({
            "component_appid": self.appid,
            "component_appsecret": self.secret.expose_secret(),
            "component_verify_ticket": ticket.value,
        });
        let answer = client.component(COMPONENT_TOKEN, None, &body, deadline).await.map_err(TokenError::failure)?;
        let token: ComponentToken = read_answer(answer)?;
        issued(token.component_access_token, token.expires_in, now_ms())
    }

    /// An authorizer token from the stored refresh token. On 61023 the store is read again (another instance may
    /// have stored a newer one), then WeChat's own list is asked; only then is re-authorisation required.
    async fn fetch_authorizer_token(
        &self,
        client: &WeChatClient,
        authorizer: &str,
        deadline: Instant,
    ) -> Result<CachedToken, TokenError> {
        let key = self.refresh_key(authorizer);
        let mut tried: Vec<String> = Vec::new();
        let mut listed = false;
        loop {
            let stored_now = stored(deadline, self.durable.get(&key)).await?;
            let refresh = match stored_now.filter(|r| !tried.contains(r)) {
                Some(refresh) => refresh,
                None if !listed => {
                    listed = true;
                    match self.recover_refresh_token(client, authorizer, deadline).await? {
                        Some(refresh) if !tried.contains(&refresh) => refresh,
                        _ => return Err(self.not_authorised(authorizer, tried.is_empty())),
                    }
                }
                None => return Err(self.not_authorised(authorizer, tried.is_empty())),
            };
            tried.push(refresh.clone());
            let body = json!({
                "component_appid": self.appid,
                "authorizer_appid": authorizer,
                "authorizer_refresh_token": refresh,
            });
            let answer = match self.component_call(client, AUTHORIZER_TOKEN, &body, deadline).await {
                Ok(answer) => answer,
                Err(e) if e.err_code() == codes::REFRESH_TOKEN_INVALID => {
                    tracing::warn!(authorizer, "refresh token refused (61023); reading the store, then WeChat's list");
                    continue;
                }
                Err(TokenError::Refused { errcode: codes::COMPONENT_NOT_AUTHORIZED, errmsg }) => {
                    return Err(reauthorise(authorizer, &self.appid, codes::COMPONENT_NOT_AUTHORIZED, &errmsg))
                }
                Err(e) => return Err(e),
            };
            let answer: AuthorizerToken = read_answer(answer)?;
            let token = issued(answer.authorizer_access_token, answer.expires_in, now_ms())?;
            let returned = answer.authorizer_refresh_token.filter(|r| !r.is_empty());
            if let Some(rotated) = returned.filter(|r| *r != refresh) {
                self.keep_rotated(&key, &refresh, &rotated, authorizer, deadline).await;
            }
            return Ok(token);
        }
    }

    /// Stores a rotated refresh token before the old one is let go (it still works for a while); unless another
    /// instance has stored something newer meanwhile.
    async fn keep_rotated(&self, key: &str, old: &str, rotated: &str, authorizer: &str, deadline: Instant) {
        let why = match stored(deadline, self.durable.swap(key, Some(old), rotated)).await {
            Ok(true) => None,
            Ok(false) => Some("the store holds another already (a re-authorisation?); keeping that".into()),
            Err(why) => Some(format!("could not store it ({why}); the list recovers it when the old one dies")),
        };
        match why {
            None => tracing::debug!(authorizer, "WeChat rotated the refresh token; the new one is stored"),
            Some(why) => tracing::warn!(authorizer, why, "WeChat rotated the refresh token"),
        }
    }

    fn not_authorised(&self, authorizer: &str, never_held: bool) -> TokenError {
        if never_held {
            reauthorise(
                authorizer,
                &self.appid,
                sdk_codes::NOT_AUTHORISED,
                "no refresh token is stored for it and WeChat does not list it as authorised",
            )
        } else {
            reauthorise(
                authorizer,
                &self.appid,
                codes::REFRESH_TOKEN_INVALID,
                "WeChat refuses its refresh token (61023), and lists no other",
            )
        }
    }
}
