//! The demo accounts of the built-in state (`default_world.json`): the credentials the README, `wxpm invoke` and the
//! tests use.

/// The demo mini program whose credentials the README and `wxpm invoke` use.
pub const DEMO_APPID: &str = "wxdemo0000000001";
/// Its secret. Not a real secret: it exists only in the emulator's built-in state.
pub const DEMO_SECRET: &str = "demo-secret-0123456789abcdef0123";
/// The plugin the demo mini program develops.
pub const DEMO_PLUGIN: &str = "wxplugin00000001";
/// The demo third-party platform (component) that the demo mini program and the buyers can authorise. An appid of
/// WeChat's real shape: `wx` and 16 alphanumerics.
pub const DEMO_COMPONENT_APPID: &str = "wxcomponent0000001";
/// Its AppSecret. Not a real secret: it exists only in the emulator's built-in state.
pub const DEMO_COMPONENT_SECRET: &str = "demo-component-secret-0123456789";
/// Its 消息校验 Token (the `token` in push signatures).
pub const DEMO_COMPONENT_TOKEN: &str = "demo-component-token";
/// Its 消息加解密 Key. The last character carries non-zero trailing bits, as real keys often do.
pub const DEMO_COMPONENT_AES_KEY: &str = "emulatorDemoComponentAesKey0123456789abcdeG";
