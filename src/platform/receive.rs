//! Receiving WeChat's pushes to the authorisation-event URL: verified and decrypted ([`super::push`]), then acted
//! on — a ticket stored if it is the newest, an authorisation exchanged for its refresh token, a withdrawal
//! forgotten. Nothing changes unless the push verifies.

use std::time::{Duration, Instant};

use super::api::Exchange;
use super::push::{self, Push, PushError, Signed};
use super::storage::StoredTicket;
use super::{Authorization, Platform};
use crate::clock;
use crate::error::StoreFailure;
use crate::wechat::WeChatClient;
use wechat_wire::crypt::{self, MsgCrypt};

/// WeChat gives up on a push after 5 s; its work is done within this, whatever the invocation's deadline.
pub const PUSH_BUDGET: Duration = Duration::from_millis(4500);
/// How far a ticket's CreateTime may be ahead of this clock (skew) before the push is refused.
const MAX_CLOCK_AHEAD_SECS: i64 = 600;

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// A `component_verify_ticket`, kept if it is the newest.
    Ticket {
        /// False when a newer ticket was stored already (pushes can arrive out of order).
        newest: bool,
    },
    /// A mini program (re-)authorised the platform and its refresh token is stored.
    Authorized(Authorization),
    /// A mini program authorised the platform but WeChat would not exchange the code (`err_code`): its refresh token
    /// is recovered from WeChat's list on first use.
    Unexchanged {
        /// The mini program that authorised the platform.
        authorizer_appid: String,
        /// What WeChat answered the code with.
        err_code: i64,
    },
    /// A mini program withdrew; what was stored for it is gone.
    Unauthorized {
        /// The mini program that withdrew.
        authorizer_appid: String,
    },
    /// Another event: acknowledged only.
    Other {
        /// The push's `InfoType`.
        info_type: String,
    },
}

/// Why a push was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushFailure {
    /// Not from WeChat for this platform, or not readable: refused, nothing changed.
    #[error(transparent)]
    Refused(#[from] PushError),
    /// A ticket for another platform (the trailer matched, the AppId inside did not).
    #[error("the push is for platform {0}, not this one")]
    OtherPlatform(String),
    /// Verified, but it could not be kept: WeChat must not be told `success`.
    #[error("the push could not be stored: {0}")]
    Unstored(#[from] StoreFailure),
}

impl PushFailure {
    /// The HTTP status WeChat is answered with: 401 for a signature that does not verify, 503 when the push could
    /// not be kept, 400 for the rest.
    pub fn status(&self) -> u16 {
        match self {
            PushFailure::Refused(PushError::Crypt(crypt::CryptError::Signature)) => 401,
            PushFailure::Unstored(_) => 503,
            _ => 400,
        }
    }

    /// The sample library's code for a refusal (−40001 a bad signature …), or −503 when the store failed.
    pub fn code(&self) -> i64 {
        match self {
            PushFailure::Refused(PushError::Crypt(e)) => e.code(),
            // The samples' ParseXml.
            PushFailure::Refused(_) => -40002,
            PushFailure::OtherPlatform(_) => crypt::CryptError::AppId.code(),
            PushFailure::Unstored(_) => -503,
        }
    }
}

impl Platform {
    /// Verifies, decrypts and acts on one push to the authorisation-event URL. Nothing changes unless the push
    /// verifies; `Unstored` means it verified but could not be kept.
    pub async fn receive(
        &self,
        client: &WeChatClient,
        signed: &Signed<'_>,
        body: &str,
        deadline: Instant,
    ) -> Result<Handled, PushFailure> {
        let deadline = deadline.min(Instant::now() + PUSH_BUDGET);
        let keys: Vec<&MsgCrypt> = self.keys.iter().collect();
        match push::open(&keys, signed, body)? {
            Push::Ticket { component_appid, .. } if component_appid != self.appid => {
                Err(PushFailure::OtherPlatform(component_appid))
            }
            Push::Ticket { create_time, .. } if create_time > clock::unix_secs() as i64 + MAX_CLOCK_AHEAD_SECS => {
                // Newest-wins would let one ticket from the future block every real one for good.
                Err(PushFailure::Refused(PushError::Missing("a CreateTime that is not in the future")))
            }
            Push::Ticket { ticket, create_time, .. } => {
                let newest = self.store_ticket(&StoredTicket { create_time, value: ticket }, deadline).await?;
                tracing::debug!(component = %self.appid, create_time, newest, "component_verify_ticket received");
                Ok(Handled::Ticket { newest })
            }
            Push::Authorized { authorizer_appid, code, updated } => {
                tracing::debug!(component = %self.appid, authorizer = %authorizer_appid, updated, "authorised");
                self.authorized_push(client, authorizer_appid, &code, deadline).await
            }
            Push::Unauthorized { authorizer_appid } => {
                self.forget(&authorizer_appid, deadline).await?;
                tracing::debug!(component = %self.appid, authorizer = %authorizer_appid, "authorisation withdrawn");
                Ok(Handled::Unauthorized { authorizer_appid })
            }
            Push::Other { info_type } => {
                tracing::debug!(component = %self.appid, info_type = %info_type, "platform event acknowledged");
                Ok(Handled::Other { info_type })
            }
        }
    }

    async fn authorized_push(
        &self,
        client: &WeChatClient,
        authorizer_appid: String,
        code: &str,
        deadline: Instant,
    ) -> Result<Handled, PushFailure> {
        match self.exchange(client, code, deadline).await {
            Ok(authorization) => Ok(Handled::Authorized(authorization)),
            Err(Exchange::Unstored(why)) => Err(PushFailure::Unstored(why)),
            // WeChat refused or failed: the refresh token can still be recovered through api_get_authorizer_list on
            // first use, so WeChat is told `success` all the same.
            Err(Exchange::WeChat(e)) => {
                tracing::error!(
                    authorizer = %authorizer_appid,
                    err_code = e.err_code(),
                    err_msg = %e,
                    "could not exchange the authorisation code; the refresh token will be recovered on first use"
                );
                Ok(Handled::Unexchanged { authorizer_appid, err_code: e.err_code() })
            }
        }
    }
}
