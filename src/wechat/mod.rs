//! The WeChat client side: HTTP exchanges and API security (the errcode table is the wire's: `wechat_wire::codes`).
pub(crate) mod client;
pub mod security;

pub(crate) use client::{errcode, errmsg};
pub use client::{Answer, ClientError, PluginAnswer, WeChatClient};

/// Whether `s` can be an appid: WeChat's are `wx` and 16 hex digits; we accept what is safe in a store key.
pub(crate) fn is_appid(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
