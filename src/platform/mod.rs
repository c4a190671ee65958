//! Third-party platform mode (第三方平台): acting for the many mini programs that authorised the platform.
//!
//! So far: WXBizMsgCrypt ([`crypt`]) and the reading of WeChat's pushes to the platform ([`push`]).
pub mod crypt;
pub mod push;
