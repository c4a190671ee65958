//! WeChat mini-program plugin management (`cloud.openapi.pluginManager.*`) as an AWS Lambda function.

#[cfg(feature = "emulator")]
pub mod emulator;
pub mod wechat;
