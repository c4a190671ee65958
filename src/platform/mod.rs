//! Third-party platform mode (第三方平台): acting for the many mini programs that authorised the platform.
//!
//! So far: WXBizMsgCrypt, the signing and encryption of WeChat's pushes to the platform ([`crypt`]).
pub mod crypt;
