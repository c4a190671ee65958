//! WeChat's component endpoints (`/cgi-bin/component/*`), called with the component token, and their answers read
//! into typed structs.

use std::time::Instant;

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Authorization, Platform, PLUGIN_PERMISSION_SET};
use crate::clock::now_ms;
use crate::error::{Failure, StoreFailure, TokenError};
use crate::token::{issued, succeeded};
use crate::wechat::{errcode, errmsg, is_appid, Answer, WeChatClient};
use wechat_wire::codes::{self, Class};

pub(super) const COMPONENT_TOKEN: &str = "/cgi-bin/component/api_component_token";
const QUERY_AUTH: &str = "/cgi-bin/component/api_query_auth";
pub(super) const AUTHORIZER_TOKEN: &str = "/cgi-bin/component/api_authorizer_token";
const AUTHORIZER_LIST: &str = "/cgi-bin/component/api_get_authorizer_list";
const START_PUSH: &str = "/cgi-bin/component/api_start_push_ticket";

/// `api_get_authorizer_list` gives at most this many per page.
const LIST_PAGE: usize = 500;
/// Pages read while recovering one refresh token (100,000 mini programs), so a broken answer cannot loop.
const LIST_PAGES: usize = 200;

/// `api_query_auth`'s answer.
#[derive(Deserialize)]
struct QueryAuth {
    authorization_info: AuthorizationInfo,
}

/// What a mini program granted, with its first tokens.
#[derive(Deserialize)]
struct AuthorizationInfo {
    authorizer_appid: Option<String>,
    authorizer_access_token: Option<String>,
    expires_in: Option<u64>,
    authorizer_refresh_token: Option<String>,
    #[serde(default)]
    func_info: Vec<Granted>,
}

/// One permission set granted (权限集).
#[derive(Deserialize)]
struct Granted {
    funcscope_category: Option<FuncScope>,
}

#[derive(Deserialize)]
struct FuncScope {
    id: Option<u64>,
}

/// A page of `api_get_authorizer_list`.
#[derive(Deserialize)]
struct AuthorizerList {
    #[serde(default)]
    total_count: usize,
    #[serde(default)]
    list: Vec<Listed>,
}

/// One mini program in the list, with its current refresh token.
#[derive(Deserialize)]
struct Listed {
    authorizer_appid: Option<String>,
    refresh_token: Option<String>,
}

/// Why an authorisation code bought nothing.
pub(super) enum Exchange {
    /// WeChat refused the code or failed.
    WeChat(TokenError),
    /// The refresh token came back but could not be stored.
    Unstored(StoreFailure),
}

/// A component answer read into `T`, or a failure that withholds it (`what` names the endpoint and the fault).
fn read<T: serde::de::DeserializeOwned>(answer: Answer, endpoint: &str) -> Result<T, TokenError> {
    serde_json::from_value(Value::Object(answer)).map_err(|_| unreadable(endpoint, "not the documented shape"))
}

fn unreadable(endpoint: &str, what: &str) -> TokenError {
    TokenError::failure(Failure::InvalidJson(format!("({endpoint}'s answer, withheld: {what})")))
}

impl Platform {
    /// Exchanges an authorisation code (from the `authorized` push or the authorisation page's redirect) for the
    /// mini program's refresh token, which is stored, and its first access token, which is kept.
    pub async fn exchange_code(
        &self,
        client: &WeChatClient,
        code: &str,
        deadline: Instant,
    ) -> Result<Authorization, TokenError> {
        self.exchange(client, code, deadline).await.map_err(|e| match e {
            Exchange::WeChat(e) => e,
            Exchange::Unstored(failure) => failure.into(),
        })
    }

    pub(super) async fn exchange(
        &self,
        client: &WeChatClient,
        code: &str,
        deadline: Instant,
    ) -> Result<Authorization, Exchange> {
        let body = json!({ "component_appid": self.appid, "authorization_code": code });
        let answer = self.component_call(client, QUERY_AUTH, &body, deadline).await.map_err(|e| match e {
            // Without the store there is no ticket to buy the component token with, and nowhere to keep the answer.
            TokenError::Store(failure) => Exchange::Unstored(failure),
            e => Exchange::WeChat(e),
        })?;
        let info = read::<QueryAuth>(answer, "api_query_auth").map_err(Exchange::WeChat)?.authorization_info;
        let text = |value: &Option<String>| value.clone().filter(|s| !s.is_empty());
        let (Some(authorizer), Some(refresh)) = (text(&info.authorizer_appid), text(&info.authorizer_refresh_token))
        else {
            return Err(Exchange::WeChat(unreadable(
                "api_query_auth",
                "no authorizer_appid or authorizer_refresh_token",
            )));
        };
        if !is_appid(&authorizer) {
            return Err(Exchange::WeChat(unreadable("api_query_auth", "no valid authorizer_appid")));
        }
        self.put(&self.refresh_key(&authorizer), &refresh, deadline).await.map_err(Exchange::Unstored)?;
        self.not_authorised.lock().unwrap_or_else(|p| p.into_inner()).remove(&authorizer);
        // Re-authorisation voids the previous access token at once: replace whatever is cached.
        let cell = self.cell(&authorizer);
        cell.forget(deadline).await;
        if let Ok(token) = issued(info.authorizer_access_token, info.expires_in, now_ms()) {
            cell.offer(&token, deadline).await;
        }
        let granted = info.func_info.iter().filter_map(|f| f.funcscope_category.as_ref()?.id);
        let plugin_permission = granted.into_iter().any(|id| id == PLUGIN_PERMISSION_SET);
        if !plugin_permission {
            tracing::warn!(
                authorizer = %authorizer,
                "the mini program did not grant permission set 40 (plugin management): its plugin calls will answer 61007"
            );
        }
        Ok(Authorization { authorizer_appid: authorizer, plugin_permission })
    }

    /// Asks WeChat to (re)start the ticket pushes; gives WeChat's errmsg (`ok`, or `in a normal state`).
    pub async fn start_push(&self, client: &WeChatClient, deadline: Instant) -> Result<String, TokenError> {
        let body = json!({ "component_appid": self.appid, "component_secret": self.secret.expose_secret() });
        let answer = client.component(START_PUSH, None, &body, deadline).await.map_err(TokenError::failure)?;
        succeeded(answer).map(|answer| errmsg(&answer))
    }

    /// `path` with the component token, fetched again and the call repeated once if WeChat refused the token.
    pub(super) async fn component_call(
        &self,
        client: &WeChatClient,
        path: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<Answer, TokenError> {
        let mut refreshed = false;
        loop {
            let token = self.component_token(client, deadline).await?;
            let answer = client.component(path, Some(&token), body, deadline).await.map_err(TokenError::failure)?;
            let code = errcode(&answer);
            if codes::class(code) == Class::StaleToken && !refreshed {
                refreshed = true;
                self.component.invalidate(&token, deadline).await;
                continue;
            }
            return succeeded(answer);
        }
    }

    /// The refresh token WeChat lists for `authorizer` (stored when found): the way back from a lost one.
    pub(super) async fn recover_refresh_token(
        &self,
        client: &WeChatClient,
        authorizer: &str,
        deadline: Instant,
    ) -> Result<Option<String>, TokenError> {
        let found = self
            .each_listed(client, deadline, |page| {
                let listed = page.iter().find(|l| l.authorizer_appid.as_deref() == Some(authorizer))?;
                Some(listed.refresh_token.clone().filter(|r| !r.is_empty()))
            })
            .await?;
        let Some(Some(refresh)) = found else { return Ok(None) };
        self.put(&self.refresh_key(authorizer), &refresh, deadline).await?;
        tracing::info!(authorizer, "refresh token recovered from api_get_authorizer_list");
        Ok(Some(refresh))
    }

    /// Every mini program WeChat lists as having authorised the platform (all pages of `api_get_authorizer_list`).
    pub async fn authorizers(&self, client: &WeChatClient, deadline: Instant) -> Result<Vec<String>, TokenError> {
        let mut all = Vec::new();
        self.each_listed(client, deadline, |page| {
            all.extend(page.iter().filter_map(|l| l.authorizer_appid.clone()).filter(|a| is_appid(a)));
            None::<()>
        })
        .await?;
        Ok(all)
    }

    /// `visit`s the pages of `api_get_authorizer_list` in order until it returns something, or the list ends.
    async fn each_listed<T>(
        &self,
        client: &WeChatClient,
        deadline: Instant,
        mut visit: impl FnMut(&[Listed]) -> Option<T>,
    ) -> Result<Option<T>, TokenError> {
        let mut offset = 0usize;
        for _ in 0..LIST_PAGES {
            let body = json!({ "component_appid": self.appid, "offset": offset, "count": LIST_PAGE });
            let answer = self.component_call(client, AUTHORIZER_LIST, &body, deadline).await?;
            let page: AuthorizerList = read(answer, "api_get_authorizer_list")?;
            if let Some(found) = visit(&page.list) {
                return Ok(Some(found));
            }
            offset += page.list.len();
            if page.list.is_empty() || offset >= page.total_count {
                return Ok(None);
            }
        }
        Ok(None)
    }
}
