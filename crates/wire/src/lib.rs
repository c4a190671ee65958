//! What both sides of WeChat's wire share, written once: the function (a client of WeChat) and the emulator (WeChat)
//! each depend on this crate and on nothing of the other.
//!
//! - [`codes`]: the one table of WeChat `errcode`s, their text and what each means to a caller;
//! - [`envelope`]: server API security (服务端API安全), AES-256-GCM bodies and RSASSA-PSS signatures;
//! - [`crypt`]: WXBizMsgCrypt, how WeChat encrypts and signs what it pushes to a third-party platform;
//! - [`paths`]: the plugin-management endpoints, which the function calls and the emulator serves.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codes;
pub mod crypt;
pub mod envelope;

/// The plugin-management endpoints of `api.weixin.qq.com`.
pub mod paths {
    /// What a mini program does with the plugins it uses: apply, list, unbind, update.
    pub const PLUGIN: &str = "/wxa/plugin";
    /// What a plugin's developer does with the applications to use it.
    pub const DEV_PLUGIN: &str = "/wxa/devplugin";
}
