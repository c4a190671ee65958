//! What the function's tests share: a local Lambda Runtime API and the Lambda process it drives, a function set up
//! against the emulator, a Secrets Manager extension stand-in, dynalite and the fleet's stores. Process helpers every
//! crate's tests use (temp paths, redis-server, the leak checks) are the `testkit` crate's.

pub mod dynalite;
pub mod extension;
pub mod function;
pub mod runtime_api;
pub mod setup;
pub mod shared_store;
