//! The WeChat client side: HTTP exchanges and the errcode table.
pub mod client;
pub mod codes;

pub use client::{errcode, errmsg, Answer, WeChatClient};
