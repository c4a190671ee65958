//! The WeChat client side.
pub mod codes;
