//! The function through the real Lambda binary: each action, each error, tokens, secrets, its log line and metrics,
//! properties, faults.

mod actions;
mod errors;
mod faults;
mod logging;
mod metrics;
mod properties;
mod secrets;
mod tokens;
