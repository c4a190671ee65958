//! The function's integration tests, one target, a folder per area. Each drives the real thing: the Lambda binary
//! under a local Runtime API (`support`), the emulator over loopback HTTP, a real `redis-server` and dynalite.
//!
//! Moved here from one target per file; each file keeps its tests and names:
//! `function/` (actions, errors, tokens, secrets, logging, metrics, properties, faults ← `function_*.rs`,
//! `logging.rs`, `metrics.rs`, `properties.rs`, `fault_suite.rs`), `gateway/` (← `gateway.rs`), `stores/` (redis,
//! dynamodb, shared ← `redis_cache.rs`, `dynamodb_store.rs`, `shared_store.rs`), `platform/` (← `platform.rs`),
//! `api_security/` (← `api_security.rs`), `emulator/` (the emulator as WeChat's open platform and its API-security
//! layer over loopback, read with the function's push reader and a small client on the wire crate: they stay with the
//! function because they use its push reader ← `emulator_platform.rs`, `emulator_api_security.rs`), `lambda/` (the binary, the Runtime API, the
//! Secrets extension ← `lambda_binary.rs`, `runtime_api_selftest.rs`, `secrets_extension.rs`), `rollout/` (rollouts
//! over SQS: moto's SQS and the event source mapping stand-in, `support::sqs` and `support::esm`). The emulator's own
//! tests are in `crates/emulator/tests` (← `emulator.rs`), `wxpm`'s in `crates/wxpm/tests` (← `emulator_cli.rs`,
//! `events.rs`, `platform_cli.rs`, and the two wxpm tests of `api_security.rs` and `function_secrets.rs`), the
//! official API-security vectors in `crates/wire/tests` (← `api_security_vectors.rs`).

mod api_security;
mod emulator;
mod function;
mod gateway;
mod lambda;
mod platform;
mod rollout;
mod stores;
mod support;
