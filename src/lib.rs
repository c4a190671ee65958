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
//! One request flows one way. Each module imports only from the ones after it in this list, never from one before
//! it. The composition, the call path, the operations, the configuration, the secrets and the clock are private; the
//! root re-exports what a user of the library needs from them.
//!
//! - [`edge`]: the ways in, each a function over the container's [`App`]: [`edge::handle_payload`],
//!   [`edge::handle`], [`edge::invoke`]; [`edge::lambda::run`] is the Lambda binary's whole life (the Runtime API
//!   loop, deadlines, init errors); `edge::gateway` reads and answers API Gateway, function URL and ALB requests and
//!   WeChat's pushes; `edge::sqs` runs a batch from the rollout queue and names the records to deliver again.
//! - `app`: the composition: a [`Config`] becomes an [`App`], once per container.
//! - `rollout`: a third-party platform's rollouts ([`Rollouts`]): one event across every authorised mini program
//!   through the rollout queue (SQS), at most one change per program, and their start, status and report.
//! - `call`: the one call path, event → [`Request`] → token → WeChat → result, its retry policy, and the one place
//!   that knows where tokens come from ([`TokenSource`]); [`PluginCaller`] is its face.
//! - `operation`: one type per action ([`Apply`], [`Unbind`], …), each reading its parameters and writing its wire
//!   body; [`Operation`] names their method and path by `match`.
//! - [`platform`]: third-party platform mode (pushes, component endpoints, authorizer tokens, durable state).
//! - [`token`]: the token cells (single flight, early refresh, shared by the fleet) and their stores, which share one
//!   breaker and one lease key.
//! - `config`, `secrets`: the environment read once at cold start, a secret through the Lambda extension.
//! - `aws`: DynamoDB's and SQS's JSON APIs, signed with SigV4 (the stores' and the rollout queue's client).
//! - [`wechat`]: the HTTP client and API security (seal and open); the errcode table, the API-security envelope and
//!   WXBizMsgCrypt are the wire's (`wechat_wire`), shared with the emulator.
//! - [`observe`]: the one log line per invocation and its metrics.
//! - [`error`]: the error type, and the one-line text of a lower error and its causes.
//! - [`present`]: the wire shapes of what the function answers: errMsg texts, camelCase results, the thrown JSON,
//!   Lambda's `{errorType, errorMessage}`.
//! - [`case`] (camelCase ↔ snake_case), `clock` (the one reading of the wall clock).
//!
//! The emulator (`wechat_emulator`) and the command line (`wxpm`) are crates of their own in this workspace: the
//! function's dependency tree holds neither.
//!
//! # Example
//!
//! The same code path as the Lambda function, against the embedded emulator:
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::{Duration, Instant};
//!
//! use wechat_emulator::{Emulator, DEMO_APPID, DEMO_SECRET};
//! use wx_plugin_manager::{App, Config};
//!
//! let wechat = Emulator::start()?; // WeChat, on a loopback port
//! // What a cold start builds from its environment: here the emulator's demo mini program.
//! let app = App::new(&Config::from_lookup(|name| match name {
//!     "WX_APPID" => Some(DEMO_APPID.to_owned()),
//!     "WX_SECRET" => Some(DEMO_SECRET.to_owned()),
//!     "WX_API_BASE" => Some(wechat.base_url().to_owned()),
//!     _ => None,
//! })?)?;
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
mod aws;
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
mod rollout;
mod secrets;
pub mod token;
pub mod wechat;

pub use app::App;
pub use call::{PluginCaller, TokenSource};
pub use config::{Config, TokenEndpoint, DEFAULT_API_BASE};
pub use error::Error;
pub use observe::Usage;
pub use operation::{Apply, DevAgree, DevApplyList, DevDelete, DevRefuse, Operation, Request, Unbind, Update};
pub use rollout::Rollouts;
pub use token::TokenProvider;
pub use wechat::WeChatClient;
