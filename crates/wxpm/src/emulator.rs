//! `wxpm emulator`: the WeChat emulator served until a stop signal, with the API-security key files it writes for the
//! function's settings, and removes, as it promised.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;
#[cfg(unix)]
use tokio::signal::unix::{signal, Signal, SignalKind};
use wechat_emulator::{Emulator, Enforcement, World, DEMO_APPID, DEMO_PLUGIN, DEMO_SECRET};

use crate::runtime;

pub(crate) fn serve_emulator(
    addr: SocketAddr,
    state: Option<PathBuf>,
    api_security_dir: Option<PathBuf>,
    api_security: Option<&str>,
) -> ExitCode {
    let world = match state {
        Some(path) => match Emulator::load_world(&path) {
            Ok(world) => world,
            Err(e) => {
                eprintln!("wxpm emulator: cannot load state: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => World::builtin(),
    };
    let Some(runtime) = runtime() else { return ExitCode::FAILURE };
    // Listening before anything is written: a stop that comes right after the key files still removes them.
    let stop = match runtime.block_on(async { StopSignals::listen() }) {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("wxpm emulator: cannot listen for Ctrl-C and SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    let emulator = match Emulator::start_with(world, addr) {
        Ok(emulator) => emulator,
        Err(e) => {
            eprintln!("wxpm emulator: cannot start on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(enforcement) = api_security {
        enforce_api_security(&emulator, enforcement);
    }
    greet(&emulator);
    let key_files = match KeyFiles::write(&emulator, api_security_dir) {
        Ok(key_files) => key_files,
        Err((dir, e)) => {
            eprintln!("wxpm emulator: cannot write the API security keys to {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(stop.first());
    drop(emulator);
    drop(key_files);
    ExitCode::SUCCESS
}

/// `enforcement` for every account and platform that has API security keys.
fn enforce_api_security(emulator: &Emulator, enforcement: &str) {
    let keyed: Vec<String> = emulator.world().api_security_keys().map(|(appid, _)| appid.to_owned()).collect();
    for appid in keyed {
        emulator.set_api_security_enforcement(&appid, enforcement);
    }
}

/// What a user needs to point the function at the emulator, on stdout; the first line names the URL it serves.
fn greet(emulator: &Emulator) {
    // A closed stdout (a test that read only the first line) must not stop the server.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "WeChat emulator listening on {}", emulator.base_url());
    let _ = writeln!(
        out,
        "demo mini program: WX_APPID={DEMO_APPID} WX_SECRET={DEMO_SECRET} (plugin it develops: {DEMO_PLUGIN})"
    );
    let _ = writeln!(out, "control endpoint: {}/__emulator/state (loopback only); Ctrl-C stops", emulator.base_url());
    let _ = out.flush();
}

/// Ctrl-C (SIGINT), SIGTERM (`kill`, a supervisor, a test) and SIGHUP (the terminal closed): each ends the run
/// through the same way out, so the files it wrote are removed.
#[cfg(unix)]
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
    hang_up: Signal,
}

#[cfg(unix)]
impl StopSignals {
    /// Must be called inside the runtime that will wait for them.
    fn listen() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hang_up: signal(SignalKind::hangup())?,
        })
    }

    async fn first(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hang_up.recv() => {}
        }
    }
}

/// Ctrl-C, where there are no unix signals.
#[cfg(windows)]
struct StopSignals(tokio::signal::windows::CtrlC);

#[cfg(windows)]
impl StopSignals {
    fn listen() -> std::io::Result<StopSignals> {
        tokio::signal::windows::ctrl_c().map(StopSignals)
    }

    async fn first(mut self) {
        self.0.recv().await;
    }
}

/// The `<appid>.api-security.json` files one run wrote. Dropping it ends their life as the run promised: removed
/// (and their directory, when nothing else is in it) unless the user named the directory, where they stay and the
/// run says so — every way out of the run, an error included, goes through here.
struct KeyFiles {
    dir: PathBuf,
    written: Vec<PathBuf>,
    keep: bool,
}

impl KeyFiles {
    /// Writes the settings of every account and platform with API security keys (readable by the owner only) into
    /// `asked_dir`; without one, only when some account's enforcement is not off (the keys are needed then), into
    /// `wxpm-emulator-PORT` in the temp directory. Says on stderr where each file is.
    fn write(emulator: &Emulator, asked_dir: Option<PathBuf>) -> Result<KeyFiles, (PathBuf, std::io::Error)> {
        let world = emulator.world();
        let secured: Vec<_> = world.api_security_keys().map(|(appid, keys)| (appid, keys.enforcement)).collect();
        let enforced = secured.iter().any(|(_, enforcement)| *enforcement != Enforcement::Off);
        let keep = asked_dir.is_some();
        let dir =
            asked_dir.unwrap_or_else(|| std::env::temp_dir().join(format!("wxpm-emulator-{}", emulator.addr().port())));
        let mut files = KeyFiles { dir, written: Vec::new(), keep };
        if secured.is_empty() || !(keep || enforced) {
            if !secured.is_empty() {
                eprintln!(
                    "API security is off for every account: no key files written (--api-security optional or \
                     required, or --api-security-dir, writes them)"
                );
            }
            return Ok(files);
        }
        std::fs::create_dir_all(&files.dir).map_err(|e| (files.dir.clone(), e))?;
        for (appid, enforcement) in secured {
            let settings: serde_json::Map<String, Value> =
                emulator.api_security_env(appid).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            let path = files.dir.join(format!("{appid}.api-security.json"));
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&path).map_err(|e| (files.dir.clone(), e))?;
            files.written.push(path.clone());
            writeln!(file, "{}", serde_json::to_string_pretty(&Value::Object(settings)).unwrap_or_default())
                .map_err(|e| (files.dir.clone(), e))?;
            eprintln!("API security keys for {appid}: {} (enforcement {})", path.display(), enforcement.as_str());
        }
        if !files.keep {
            eprintln!("(removed when the emulator stops; --api-security-dir keeps them)");
        }
        Ok(files)
    }
}

impl Drop for KeyFiles {
    fn drop(&mut self) {
        if self.written.is_empty() {
            return;
        }
        if self.keep {
            eprintln!("wxpm emulator: the API security key files stay in {}", self.dir.display());
            return;
        }
        for path in &self.written {
            let _ = std::fs::remove_file(path);
        }
        // Fails, and so keeps the directory, when anything else is in it.
        let _ = std::fs::remove_dir(&self.dir);
        eprintln!("wxpm emulator: removed the API security key files from {}", self.dir.display());
    }
}
