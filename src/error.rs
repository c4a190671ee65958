//! The one error type: a stable kind (the Lambda `errorType`) and the `{errCode, errMsg}` that wx-server-sdk would
//! throw, with WeChat's errcode and errmsg kept verbatim; and `chain`, the one-line text of a lower error and its
//! causes that the network failures (WeChat's, DynamoDB's) carry.

use crate::present;

/// wx-server-sdk's own codes for failures that are not WeChat's answer.
pub mod sdk_codes {
    /// The network failed ("resource system error").
    pub const NETWORK: i64 = -501001;
    /// WeChat did not answer in time ("resource server timeout").
    pub const TIMEOUT: i64 = -501002;
    /// The call's parameters are invalid.
    pub const INVALID_PARAMETERS: i64 = -501007;
    /// WeChat's answer is not JSON ("system error").
    pub const SYSTEM: i64 = -601001;
    /// Ours, not wx-server-sdk's: a third-party platform holds no component_verify_ticket yet.
    pub const NO_TICKET: i64 = -602001;
    /// Ours: the mini program is not known to have authorised the platform (nothing stored, not in WeChat's list).
    pub const NOT_AUTHORISED: i64 = -602002;
    /// Ours: a third-party platform's store (Redis) could not be read or written.
    pub const STORE_UNAVAILABLE: i64 = -602003;
    /// Ours: a rollout's queue could not take its messages.
    pub const QUEUE_UNAVAILABLE: i64 = -602005;
    /// Ours: with API security on, an answer failed a check (signature, certificate, appid, time, decryption), or
    /// the request could not be sealed.
    pub const UNVERIFIED: i64 = -602004;
}

/// How an exchange with WeChat failed, short of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No connection, or an exchange that broke off.
    Network(String),
    /// No answer before the deadline.
    Timeout,
    /// An HTTP status other than 200.
    Status(u16),
    /// An answer that is not a JSON object (an excerpt of it).
    InvalidJson(String),
    /// With API security on: a request that could not be sealed (never sent), or an answer that failed a check.
    Unverified(SecurityFailure),
}

/// Why an API-security exchange is not trusted. Never passed through, never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityFailure {
    /// The system's random source failed: the request was not sealed, nor sent.
    #[error("the request could not be sealed (no randomness)")]
    NoRandomness,
    /// A plain answer claiming success: WeChat's layer seals every success.
    #[error("a plain (unsealed) answer claimed success")]
    PlainSuccess,
    /// A signed answer whose body is not an envelope, or an answer that is neither JSON nor an envelope.
    #[error("the answer is not an envelope")]
    NotAnEnvelope,
    /// An envelope without a signature.
    #[error("the envelope is not signed")]
    Unsigned,
    /// `Wechatmp-Appid` is not the appid the call was made as.
    #[error("the answer is for appid {0:?}, not this one")]
    ForeignAppid(String),
    /// `Wechatmp-TimeStamp` is missing or not a number.
    #[error("the answer has no Wechatmp-TimeStamp")]
    NoTimestamp,
    /// Signed by a certificate not in WX_API_PLATFORM_CERTS (nor named as the deprecated one).
    #[error("the answer is signed by platform certificate {0:?}, which is not in WX_API_PLATFORM_CERTS")]
    UnknownCertificate(String),
    /// The signature does not verify with the certificate it names.
    #[error("the answer's signature does not verify")]
    BadSignature,
    /// The answer's timestamp is too far from this clock.
    #[error("the answer is {age_secs} s from this clock (more than 300 s)")]
    Stale {
        /// How far, in seconds.
        age_secs: u64,
    },
    /// The envelope does not decrypt with the symmetric key and the answer's additional data.
    #[error("the answer does not decrypt with WX_API_SYM_KEY")]
    Undecryptable,
    /// `_appid` or `_timestamp` inside does not match the headers.
    #[error("the answer's {0} does not match its headers")]
    Mismatch(&'static str),
}

impl Failure {
    fn code(&self) -> i64 {
        match self {
            Failure::Network(_) | Failure::Status(_) => sdk_codes::NETWORK,
            Failure::Timeout => sdk_codes::TIMEOUT,
            Failure::InvalidJson(_) => sdk_codes::SYSTEM,
            Failure::Unverified(_) => sdk_codes::UNVERIFIED,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Network(why) => write!(f, "resource system error: {why}"),
            Failure::Timeout => f.write_str("resource server timeout"),
            Failure::Status(status) => write!(f, "resource system error: HTTP {status}"),
            Failure::InvalidJson(body) => {
                write!(f, "wechat server internal error, response body is invalid json: {body}")
            }
            Failure::Unverified(why) => write!(f, "API security: {why}"),
        }
    }
}

/// A store (the fleet's token cache, a platform's durable state) could not be read or written, or not in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreFailure(pub String);

/// Every failure of an invocation: a kind ([`Error::kind`]) and what wx-server-sdk would throw ([`Error::to_json`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// WeChat answered the plugin call with an errcode other than 0.
    #[error("{}", self.err_msg())]
    WxApi {
        /// The `<method>` of errMsg's `openapi.pluginManager.<method>`.
        method: &'static str,
        /// WeChat's errcode, verbatim: its meaning is in [`codes`](wechat_wire::codes).
        errcode: i64,
        /// WeChat's errmsg, verbatim (` rid: …` included).
        errmsg: String,
    },
    /// The event is not a valid call; nothing was sent to WeChat.
    #[error("{}", self.err_msg())]
    InvalidEvent {
        /// The `<method>` of errMsg; empty when the action itself could not be read.
        method: &'static str,
        /// What is wrong, naming the field: follows `invalid parameters: ` in errMsg.
        detail: String,
    },
    /// No access token could be had: WeChat's token endpoint refused, or could not be reached.
    #[error("{}", self.err_msg())]
    Token {
        /// The `<method>` of errMsg (empty for a platform chore outside any plugin call).
        method: &'static str,
        /// The token endpoint's errcode, or one of [`sdk_codes`] when it gave none (network, ticket).
        errcode: i64,
        /// The token endpoint's errmsg, or why no token could be had.
        errmsg: String,
    },
    /// A third-party platform's store could not be read or written, so no token could be had. Its `errorType` is
    /// `TokenError` still (the contract's kind: the call failed for want of a token), its code −602003.
    #[error("{}", self.err_msg())]
    Store {
        /// The `<method>` of errMsg (empty for a platform chore outside any plugin call).
        method: &'static str,
        /// What the store said.
        failure: StoreFailure,
    },
    /// The plugin call got no usable answer.
    #[error("{}", self.err_msg())]
    Upstream {
        /// The `<method>` of errMsg's `openapi.pluginManager.<method>`.
        method: &'static str,
        /// How the exchange failed.
        failure: Failure,
    },
    /// A rollout could not be started or read: the platform's store or the rollout queue failed.
    #[error("{}", self.err_msg())]
    Rollout {
        /// The `<method>` of errMsg (`rolloutStart`, `rolloutStatus`, `rolloutReport`).
        method: &'static str,
        /// [`sdk_codes::STORE_UNAVAILABLE`] or [`sdk_codes::QUEUE_UNAVAILABLE`].
        errcode: i64,
        /// What failed, and what to do.
        detail: String,
    },
    /// The function is not configured to run.
    #[error("{}", self.err_msg())]
    Config(String),
}

impl Error {
    /// The stable `errorType`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::WxApi { .. } => "WxApiError",
            Error::InvalidEvent { .. } => "InvalidEvent",
            Error::Token { .. } | Error::Store { .. } => "TokenError",
            Error::Upstream { .. } => "UpstreamError",
            Error::Rollout { .. } => "RolloutError",
            Error::Config(_) => "ConfigError",
        }
    }

    /// wx-server-sdk's `errCode`: WeChat's errcode when it answered, else one of [`sdk_codes`].
    pub fn err_code(&self) -> i64 {
        match self {
            Error::WxApi { errcode, .. } | Error::Token { errcode, .. } | Error::Rollout { errcode, .. } => *errcode,
            Error::InvalidEvent { .. } => sdk_codes::INVALID_PARAMETERS,
            Error::Upstream { failure, .. } => failure.code(),
            Error::Store { .. } => sdk_codes::STORE_UNAVAILABLE,
            Error::Config(_) => sdk_codes::SYSTEM,
        }
    }

    /// wx-server-sdk's `errMsg`: `openapi.pluginManager.<method>:fail <why>`.
    pub fn err_msg(&self) -> String {
        match self {
            Error::WxApi { method, errmsg, .. } => present::fail_message(method, format_args!("{errmsg}")),
            Error::InvalidEvent { method, detail } => {
                present::fail_message(method, format_args!("invalid parameters: {detail}"))
            }
            Error::Token { method, errmsg, .. } => {
                present::fail_message(method, format_args!("cannot get access_token: {errmsg}"))
            }
            Error::Upstream { method, failure } => present::fail_message(method, format_args!("{failure}")),
            Error::Store { method, failure } => present::fail_message(
                method,
                format_args!("cannot get access_token: the platform's store is unavailable: {failure}"),
            ),
            Error::Rollout { method, detail, .. } => present::fail_message(method, format_args!("{detail}")),
            Error::Config(why) => present::fail_message(present::NO_METHOD, format_args!("configuration error: {why}")),
        }
    }

    /// `{"errorType":…,"errorMessage":…}`: the error as Lambda reports a failed invocation (or init).
    pub fn to_lambda_json(&self) -> serde_json::Value {
        present::lambda_error(self.kind(), &self.to_json())
    }

    /// `{"errCode":N,"errMsg":"…"}`: what wx-server-sdk throws.
    pub fn to_json(&self) -> serde_json::Value {
        present::thrown(self.err_code(), self.err_msg())
    }
}

/// Why no access token could be had. It names no method: token and store failures are found below the call path,
/// which names the method once ([`TokenError::for_method`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint refused (its errcode and errmsg), or could not be reached (one of [`sdk_codes`]).
    #[error("{errmsg} ({errcode})")]
    Refused {
        /// The token endpoint's errcode, or one of [`sdk_codes`] when it gave none (network, ticket).
        errcode: i64,
        /// The token endpoint's errmsg, or why no token could be had.
        errmsg: String,
    },
    /// A third-party platform's store could not be read or written.
    #[error("the platform's store is unavailable: {0}")]
    Store(StoreFailure),
}

impl TokenError {
    /// A token-endpoint exchange that failed short of an answer.
    pub fn failure(failure: Failure) -> TokenError {
        TokenError::Refused { errcode: failure.code(), errmsg: failure.to_string() }
    }

    /// The `errCode` it becomes: the token endpoint's, or one of [`sdk_codes`].
    pub fn err_code(&self) -> i64 {
        match self {
            TokenError::Refused { errcode, .. } => *errcode,
            TokenError::Store(_) => sdk_codes::STORE_UNAVAILABLE,
        }
    }

    /// The invocation's error: this failure, for the call to `method`.
    pub fn for_method(self, method: &'static str) -> Error {
        match self {
            TokenError::Refused { errcode, errmsg } => Error::Token { method, errcode, errmsg },
            TokenError::Store(failure) => Error::Store { method, failure },
        }
    }
}

impl From<StoreFailure> for TokenError {
    fn from(failure: StoreFailure) -> TokenError {
        TokenError::Store(failure)
    }
}

/// The error and its causes, one line. Callers pass errors that hold no URL (reqwest's after `without_url`, hyper's,
/// the OS's).
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wechat_errors_keep_errcode_and_errmsg_verbatim() {
        let e = Error::WxApi { method: "unbindPlugin", errcode: 89243, errmsg: "x rid: 1-2-3".into() };
        assert_eq!(
            e.to_json(),
            json!({"errCode":89243,"errMsg":"openapi.pluginManager.unbindPlugin:fail x rid: 1-2-3"})
        );
        let reported = e.to_lambda_json();
        assert_eq!(reported["errorType"], "WxApiError");
        assert_eq!(
            reported["errorMessage"],
            r#"{"errCode":89243,"errMsg":"openapi.pluginManager.unbindPlugin:fail x rid: 1-2-3"}"#
        );
    }

    #[test]
    fn sdk_failures_use_wx_server_sdk_codes() {
        let up = |failure| Error::Upstream { method: "getPluginList", failure };
        assert_eq!(up(Failure::Timeout).err_code(), -501002);
        assert_eq!(up(Failure::Network("reset".into())).err_code(), -501001);
        assert_eq!(up(Failure::Status(502)).err_code(), -501001);
        let bad = up(Failure::InvalidJson("<html>".into()));
        assert_eq!(bad.err_code(), -601001);
        assert_eq!(
            bad.err_msg(),
            "openapi.pluginManager.getPluginList:fail wechat server internal error, response body is invalid json: <html>"
        );
        let invalid = Error::InvalidEvent { method: "", detail: "missing field action".into() };
        assert_eq!(
            invalid.to_json(),
            json!({"errCode":-501007,"errMsg":"openapi.pluginManager:fail invalid parameters: missing field action"})
        );
        let token = TokenError::failure(Failure::Timeout).for_method("applyPlugin");
        assert_eq!((token.kind(), token.err_code()), ("TokenError", -501002));
    }
}
