//! The Lambda side: what the binary holds, the local Runtime API itself, the Secrets extension.

mod binary;
mod runtime_api;
mod secrets_extension;
