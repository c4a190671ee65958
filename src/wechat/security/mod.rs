//! WeChat's server API security (服务端API安全): encrypted and signed calls to the plugin endpoints.
//!
//! [`envelope`] is the wire, shared with the emulator.

pub mod envelope;
