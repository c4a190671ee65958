//! Where a call's access token comes from: the one place that knows the three sources and matches on them.

use std::time::Instant;

use secrecy::SecretString;

use crate::error::{Error, TokenError};
use crate::operation::{Request, AUTHORIZER_FIELD};
use crate::platform::Platform;
use crate::token::{Acquired, TokenProvider};
use crate::wechat::WeChatClient;

/// This container's source of access tokens.
pub enum TokenSource {
    /// `WX_ACCESS_TOKEN`: used as it is, never fetched, never refreshed.
    Fixed(SecretString),
    /// `WX_APPID` and its secret: fetched and cached by the provider.
    Fetched(TokenProvider),
    /// A third-party platform's: each event's mini program has its own authorizer token.
    Platform(Platform),
}

/// The token one request is made with, its source settled: a fixed token, the app's, or a mini program's authorizer
/// token from the platform.
pub enum RequestToken<'a> {
    /// `WX_ACCESS_TOKEN`, as configured: nothing to refresh.
    Fixed(&'a SecretString),
    /// The mini program's own token, from the provider's cache or WeChat's token endpoint.
    Fetched(&'a TokenProvider),
    /// The authorizer token of the mini program the platform acts for, got with its refresh token.
    Authorizer {
        /// The third-party platform acting.
        platform: &'a Platform,
        /// The mini program's appid: the event's `authorizerAppid`.
        authorizer: &'a str,
    },
}

impl TokenSource {
    /// The source of `request`'s token. A platform acts only for a named mini program; a single mini program's
    /// function for no other. The error names the request's method.
    pub fn for_request<'a>(&'a self, request: &'a Request) -> Result<RequestToken<'a>, Error> {
        let method = request.operation.method();
        match (self, request.authorizer_appid.as_deref()) {
            (TokenSource::Fixed(token), None) => Ok(RequestToken::Fixed(token)),
            (TokenSource::Fetched(provider), None) => Ok(RequestToken::Fetched(provider)),
            (TokenSource::Platform(platform), Some(authorizer)) => {
                Ok(RequestToken::Authorizer { platform, authorizer })
            }
            (TokenSource::Platform(_), None) => Err(Error::InvalidEvent {
                method,
                detail: format!(
                    "missing field {AUTHORIZER_FIELD}: acting as a third-party platform, the function needs the appid \
                     of the mini program it acts for"
                ),
            }),
            (TokenSource::Fixed(_) | TokenSource::Fetched(_), Some(_)) => Err(Error::InvalidEvent {
                method,
                detail: format!(
                    "field {AUTHORIZER_FIELD} is for a third-party platform (WX_COMPONENT_APPID); this function acts \
                     for one mini program only"
                ),
            }),
        }
    }

    /// The third-party platform this function acts as, if it does.
    pub fn platform(&self) -> Option<&Platform> {
        match self {
            TokenSource::Platform(platform) => Some(platform),
            _ => None,
        }
    }
}

impl RequestToken<'_> {
    /// A token good for at least the refresh margin, and whether it came from a cache or from WeChat.
    pub async fn get(&self, client: &WeChatClient, deadline: Instant) -> Result<(SecretString, Acquired), TokenError> {
        match self {
            RequestToken::Fixed(token) => Ok(((*token).clone(), Acquired::Cached)),
            RequestToken::Fetched(provider) => provider.token(client, deadline).await,
            RequestToken::Authorizer { platform, authorizer } => {
                platform.authorizer_token(client, authorizer, deadline).await
            }
        }
    }

    /// Whether another token can be had after WeChat refused one (a fixed token is all there is).
    pub fn refreshable(&self) -> bool {
        !matches!(self, RequestToken::Fixed(_))
    }

    /// After WeChat refused `stale`: forgotten, unless another has replaced it already.
    pub async fn invalidate(&self, stale: &SecretString, deadline: Instant) {
        match self {
            RequestToken::Fixed(_) => {}
            RequestToken::Fetched(provider) => provider.invalidate(stale, deadline).await,
            RequestToken::Authorizer { platform, authorizer } => {
                platform.invalidate_authorizer_token(authorizer, stale, deadline).await
            }
        }
    }
}
