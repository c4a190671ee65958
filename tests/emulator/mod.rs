//! The emulator as WeChat's open platform and its API-security layer, over loopback. They stay in the function's
//! suite because they read the emulator's pushes with the function's own reader (`platform::push`).

mod api_security;
mod platform;
