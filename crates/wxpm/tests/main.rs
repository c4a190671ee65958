//! `wxpm` as users run it: the real binary, against the emulator (embedded or standalone), from the workspace's root
//! (the README's commands and `events/`); `wxpm rollout --function` against a stand-in for Lambda's API on loopback.

mod emulator;
mod events;
mod invoke;
mod platform;
mod rollout;
mod rollout_lambda;

/// The workspace's root, where the README and `events/` are.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
