//! The function reading what the emulator sends: its pushes and its API-security answers.

mod api_security;
mod platform;
