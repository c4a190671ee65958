//! Test harness shared by the integration tests: a local Lambda Runtime API and the Lambda process it drives.
#![allow(dead_code)] // each test crate uses a subset

pub mod dynalite;
pub mod extension;
pub mod function;
pub mod redis;
pub mod runtime_api;
pub mod setup;
pub mod shared_store;
