//! WeChat mini-program plugin management — `cloud.openapi.pluginManager.*` of wx-server-sdk — as an AWS Lambda
//! function, and the library under it.
//!
//! An event such as `{"action":"unbind","pluginAppid":"wx…"}` becomes the snake_case call WeChat's `/wxa/plugin`
//! and `/wxa/devplugin` endpoints expect, made with a cached access token; the answer comes back as wx-server-sdk
//! returns it (`{…camelCase fields, errMsg, errCode}`), or as one [`Error`] with a stable kind and WeChat's
//! `errcode`/`errmsg` kept verbatim.
//!
//! # Layout
//!
//! One request flows one way, and each module imports only from the steps after it:
//!
//! - [`edge`]: the ways in. [`edge::lambda`] runs the Runtime API loop (the Lambda binary is that and nothing
//!   else); [`edge::gateway`] reads and answers API Gateway, function URL and ALB requests and WeChat's pushes.
//!   Each way in is a function over the container's [`App`]: [`edge::handle_payload`], [`edge::handle`], [`edge::invoke`].
//! - [`app`]: the composition: a [`Config`] becomes an [`App`], once per container.
//! - [`call`]: the one call path, event → [`Request`] → token → WeChat → result, and its retry policy;
//!   [`call::source`] is the one place that knows where tokens come from.
//! - [`operation`]: one type per action, each reading its parameters and writing its wire body ([`case`] converts
//!   keys).
//! - [`token`]: the token cells (single flight, early refresh, shared by the fleet) and their stores;
//!   [`platform`]: third-party platform mode (pushes, component endpoints, authorizer tokens, durable state).
//! - [`wechat`]: the HTTP client and WeChat's errcode table. [`observe`]: the one log line per invocation and its
//!   metrics. [`config`], [`secrets`], [`error`]: read once at cold start; the error type. [`clock`]: the one
//!   reading of the wall clock (token expiries, timestamps, Lambda's epoch deadline).
//! - `emulator` (feature `emulator`): a stateful WeChat on loopback, for tests and `wxpm`; it is WeChat, never a
//!   client of the function.
//!
//! # Example
//!
//! The same code path as the Lambda function, against the embedded emulator:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::{Duration, Instant};
//!
//! use wechat_emulator::Emulator;
//! use wx_plugin_manager::{App, Config};
//!
//! let wechat = Emulator::start()?; // WeChat, on a loopback port
//! let env = wechat.demo_env(); // WX_APPID, WX_SECRET and WX_API_BASE of its demo mini program
//! let app = App::new(&Config::from_lookup(|name| env.get(name).cloned())?)?; // what a cold start builds
//!
//! let event = serde_json::json!({ "action": "list" });
//! let deadline = Instant::now() + Duration::from_secs(3);
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let result = runtime.block_on(wx_plugin_manager::edge::invoke(&app, &event, deadline, "doc-example"))?;
//!
//! assert_eq!(result["errCode"], 0);
//! assert_eq!(result["errMsg"], "openapi.pluginManager.getPluginList:ok");
//! assert!(result["pluginList"].is_array());
//! # Ok(())
//! # }
//! ```
//!
//! `examples/library.rs` calls the operations from a Rust service of your own, without Lambda.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod app;
mod call;
pub mod case;
mod clock;
mod config;
pub mod edge;
pub mod error;
pub mod observe;
mod operation;
pub mod platform;
pub mod present;
mod secrets;
pub mod token;
pub mod wechat;

pub use app::App;
pub use call::{PluginCaller, TokenSource};
pub use config::{Config, TokenEndpoint, DEFAULT_API_BASE};
pub use error::Error;
pub use observe::Usage;
pub use operation::{Operation, Request};
