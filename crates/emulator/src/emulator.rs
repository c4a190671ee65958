//! [`Emulator`]: the emulator served on a thread of its own, and the handles tests and `wxpm` script it with (its
//! clock, faults, log, tokens, the open platform's pushes, API security's settings, the world).

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use crate::pushes::PlatformPush;
use crate::security_settings::{AppApiSecurity, Enforcement};
use crate::state::{lock, Fault, LoggedRequest, Shared, State};
use crate::tokens::TokenRecord;
use crate::world::{Status, World};
use crate::{api_security, platform, pushes, server};

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    addr: SocketAddr,
    base_url: String,
    pub(crate) shared: Shared,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Emulator {
    /// The built-in state on an ephemeral loopback port.
    pub fn start() -> io::Result<Emulator> {
        Emulator::start_with(World::builtin(), SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// `world` on `addr` (port 0 for an ephemeral one).
    pub fn start_with(world: World, addr: SocketAddr) -> io::Result<Emulator> {
        world.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let shared: Shared = Arc::new(Mutex::new(State::new(world)));
        let (stop, stopped) = watch::channel(false);
        let served = shared.clone();
        let thread = std::thread::Builder::new().name("wechat-emulator".into()).spawn(move || {
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => server::serve(listener, served, stopped).await,
                    Err(e) => eprintln!("wechat emulator: cannot serve: {e}"),
                }
            })
        })?;
        let host = if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
        Ok(Emulator { base_url: format!("http://{host}:{}", addr.port()), addr, shared, stop, thread: Some(thread) })
    }

    /// Loads a state file written in the format of the built-in state (`crates/emulator/src/default_world.json`).
    pub fn load_world(path: &std::path::Path) -> io::Result<World> {
        let text = std::fs::read_to_string(path)?;
        let parsed = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text));
        parsed.map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: at {}: {}", path.display(), e.path(), e.inner()))
        })
    }

    /// The address it listens on, with the actual port when started on port 0.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, to use as `WX_API_BASE`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The virtual time, in unix seconds.
    pub fn now(&self) -> i64 {
        lock(&self.shared).clock.now()
    }

    /// API security's clock, in unix seconds: this machine's wall clock moved as far as [`Emulator::advance`] moved the
    /// virtual one (requests are stamped, and answers checked, by the client's own clock).
    pub fn api_security_now(&self) -> i64 {
        lock(&self.shared).clock.layer_now()
    }

    /// Moves the virtual clock forward.
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        lock(&self.shared).clock.advance(secs).expect("a Duration is never negative");
    }

    /// The next `times` requests to `path` (or to any path, with `"*"`) meet `fault`.
    pub fn script(&self, path: &str, fault: Fault, times: usize) {
        lock(&self.shared).script(path, fault, times);
    }

    /// Drops every scripted fault not yet met, on every path (as `DELETE /__emulator/faults`).
    pub fn clear_faults(&self) {
        lock(&self.shared).faults.clear();
    }

    /// Every request received so far (the newest 100,000), control requests aside.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.shared).log.iter().cloned().collect()
    }

    /// How many requests `path` has received.
    pub fn count(&self, path: &str) -> u64 {
        lock(&self.shared).counters.get(path).copied().unwrap_or(0)
    }

    /// Token-endpoint calls of both kinds.
    pub fn token_calls(&self) -> u64 {
        self.count("/cgi-bin/stable_token") + self.count("/cgi-bin/token")
    }

    /// Every access token issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.shared).tokens.issued().to_vec()
    }

    /// What the emulator knows of an access token it issued; `None` for unknown and component tokens.
    pub fn token_record(&self, token: &str) -> Option<TokenRecord> {
        lock(&self.shared).tokens.record(token).cloned()
    }

    /// A token for `appid` as a third-party platform's authorizer token would be: the only kind `update` (quick
    /// update) accepts. A shortcut past the platform: the token stands outside any authorisation, so no permission set
    /// is checked and no revocation reaches it. The real chain is [`Emulator::push_ticket`], then the
    /// `/cgi-bin/component/` endpoints after [`Emulator::authorize`].
    pub fn authorizer_token(&self, appid: &str) -> String {
        let mut state = lock(&self.shared);
        let (now, ttl) = (state.clock.now(), state.world.settings.token_ttl_secs);
        state.tokens.mint_authorizer(appid, now, ttl)
    }

    /// Pushes a new component_verify_ticket (each one distinct, valid 12 virtual hours) to `component`: gives the push
    /// and, if the platform has a `push_url`, also POSTs it there in the background.
    ///
    /// # Panics
    /// If `component` is not a platform of the emulator's state (a mistake in the test).
    pub fn push_ticket(&self, component: &str) -> PlatformPush {
        platform::issue_ticket(&mut lock(&self.shared), component).unwrap_or_else(|e| panic!("{e}")).send()
    }

    /// The newest ticket pushed to `component`, young or not.
    pub fn current_ticket(&self, component: &str) -> Option<String> {
        lock(&self.shared).platform.current_ticket(component)
    }

    /// The mini program `authorizer` authorises `component` for the permission sets `func_ids` (plugin management is
    /// 40), or authorises it again: a new authorisation code (valid 3600 virtual seconds); on re-authorisation a new
    /// refresh token that kills the old one at once, and the authorizer's access tokens answer 40001. Gives the
    /// `authorized` push (`updateauthorized` if it was already authorised), also delivered to the `push_url`.
    ///
    /// # Panics
    /// If `component` or `authorizer` (a mini program, not a plugin) is not in the emulator's state.
    pub fn authorize(&self, component: &str, authorizer: &str, func_ids: &[u32]) -> PlatformPush {
        let mut state = lock(&self.shared);
        platform::authorize(&mut state, component, authorizer, func_ids).unwrap_or_else(|e| panic!("{e}")).send()
    }

    /// `authorizer` withdraws its authorisation: `api_authorizer_token` answers 61003 and its access tokens 40001.
    /// Gives the `unauthorized` push, also delivered to the `push_url`.
    ///
    /// # Panics
    /// If `component` is not a platform of the emulator's state.
    pub fn revoke(&self, component: &str, authorizer: &str) -> PlatformPush {
        platform::revoke(&mut lock(&self.shared), component, authorizer).unwrap_or_else(|e| panic!("{e}")).send()
    }

    /// `inner_xml` encrypted and signed as `component`'s push at the virtual time, for tests building odd pushes. Not
    /// delivered anywhere.
    ///
    /// # Panics
    /// If `component` is not a platform of the emulator's state.
    pub fn seal(&self, component: &str, inner_xml: &str) -> PlatformPush {
        let state = lock(&self.shared);
        pushes::seal(&state.world, component, inner_xml, state.clock.now()).unwrap_or_else(|e| panic!("{e}")).push
    }

    /// WeChat changes `authorizer`'s refresh token; the old one keeps working 5 virtual minutes. Gives the new one.
    ///
    /// # Panics
    /// If `authorizer` has no live authorisation of `component`.
    pub fn rotate_refresh_token(&self, component: &str, authorizer: &str) -> String {
        platform::rotate_refresh_token(&mut lock(&self.shared), component, authorizer).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The current refresh token of `authorizer`'s live authorisation of `component`.
    pub fn refresh_token(&self, component: &str, authorizer: &str) -> Option<String> {
        platform::refresh_token(&lock(&self.shared), component, authorizer)
    }

    /// Calls to `/cgi-bin/component/api_component_token`.
    pub fn component_token_calls(&self) -> u64 {
        self.count("/cgi-bin/component/api_component_token")
    }

    /// Calls to `/cgi-bin/component/api_authorizer_token`.
    pub fn authorizer_token_calls(&self) -> u64 {
        self.count("/cgi-bin/component/api_authorizer_token")
    }

    /// Makes every live token of `appid` answer 40001 from now on. Gives how many were live.
    pub fn invalidate_tokens(&self, appid: &str) -> usize {
        let mut state = lock(&self.shared);
        let now = state.clock.now();
        state.tokens.invalidate(appid, now)
    }

    /// What the function needs to speak API security (服务端API安全) as `appid` (a mini program, a plugin or a
    /// platform), as environment variables: `WX_API_SECURITY=on`, `WX_API_SYM_KEY`, `WX_API_SYM_SN`,
    /// `WX_API_PRIVATE_KEY` (PEM), `WX_API_KEY_SN`, `WX_API_PLATFORM_CERTS` (`{"<sn>": "<PEM>"}` of the current
    /// certificate only) and `WX_API_SIGNING_ORIGIN`. `wxpm emulator` writes the same pairs to
    /// `<appid>.api-security.json`.
    ///
    /// # Panics
    /// If `appid` has no API security keys in the emulator's state.
    pub fn api_security_env(&self, appid: &str) -> Vec<(String, String)> {
        api_security::env(&lock(&self.shared).world, appid).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Switches `appid`'s API security (a mini program's, a plugin's or a platform's) `"off"`, `"optional"` or
    /// `"required"` (see [`Enforcement`]).
    ///
    /// # Panics
    /// If `enforcement` is none of the three, or `appid` has no API security keys.
    pub fn set_api_security_enforcement(&self, appid: &str, enforcement: &str) {
        let enforcement: Enforcement = enforcement.parse().unwrap_or_else(|e| panic!("{e}"));
        self.edit_api_security(appid, |keys| keys.enforcement = enforcement);
    }

    /// Starts (`true`) or ends a platform-certificate rotation for `appid`: its secured answers also carry
    /// `Wechatmp-Serial-Deprecated` and `Wechatmp-Signature-Deprecated`, signed with the
    /// [deprecated certificate](Emulator::deprecated_platform_cert).
    ///
    /// # Panics
    /// If `appid` has no API security keys, or the state has no deprecated certificate to rotate from.
    pub fn set_api_security_rotation(&self, appid: &str, rotation: bool) {
        if rotation {
            drop(self.deprecated_platform_cert());
        }
        self.edit_api_security(appid, |keys| keys.rotation = rotation);
    }

    fn edit_api_security(&self, appid: &str, edit: impl FnOnce(&mut AppApiSecurity)) {
        let mut state = lock(&self.shared);
        edit(state.world.api_security_of_mut(appid).unwrap_or_else(|| panic!("{appid} has no api_security keys")));
    }

    /// The deprecated platform certificate's number and PEM, as the MP page showed them before the rotation.
    ///
    /// # Panics
    /// If the emulator's state has no `api_security.deprecated_cert`.
    pub fn deprecated_platform_cert(&self) -> (String, String) {
        let state = lock(&self.shared);
        let cert = state.world.api_security.deprecated_cert.as_ref().expect("the state has no deprecated_cert");
        (cert.sn.clone(), cert.cert.clone())
    }

    /// The state now (pending applications past their time shown as timed out).
    pub fn world(&self) -> World {
        let mut state = lock(&self.shared);
        let now = state.clock.now();
        state.world.expire_pending(now);
        state.world.clone()
    }

    /// Changes the state in place, e.g. to turn on an account's IP whitelist. `edit` must not call back into the
    /// emulator (the state is locked while it runs).
    pub fn edit_world<R>(&self, edit: impl FnOnce(&mut World) -> R) -> R {
        edit(&mut lock(&self.shared).world)
    }

    /// The status of `applicant`'s application for `plugin`, if there is one.
    pub fn status(&self, plugin: &str, applicant: &str) -> Option<Status> {
        self.world().applications.iter().find(|a| a.plugin == plugin && a.applicant == applicant).map(|a| a.status)
    }

    /// The dump served at `/__emulator/state`.
    pub fn snapshot(&self) -> Value {
        lock(&self.shared).snapshot()
    }

    /// Back to the starting state: tokens, log, counters, faults and clock too.
    pub fn reset(&self) {
        lock(&self.shared).reset();
    }

    /// Serves until the process ends (for the standalone CLI; a test wants to drop the emulator instead).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
