//! What the function's tests share: a local Lambda Runtime API and the Lambda process it drives, a function set up
//! against the emulator, a Secrets Manager extension stand-in, dynalite and the fleet's stores, moto's SQS and a
//! stand-in for Lambda's SQS event source mapping. Process helpers every crate's tests use (temp paths,
//! redis-server, the leak checks) are the `testkit` crate's.

pub mod demo;
pub mod dynalite;
pub mod esm;
pub mod extension;
pub mod function;
pub mod runtime_api;
pub mod setup;
pub mod shared_store;
pub mod sqs;

/// This machine's clock in unix milliseconds, as the stores' expiries are written (the function reads it in one place,
/// its private `clock`; the tests read it here).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
