//! `wxpm`: the function's local face. `wxpm emulator` serves the WeChat emulator.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use std::time::{Duration, Instant};

use serde_json::Value;
use wechat_emulator::{Emulator, DEMO_APPID, DEMO_SECRET};
use wx_plugin_manager::error::TokenError;
use wx_plugin_manager::observe::logging;
use wx_plugin_manager::present;
use wx_plugin_manager::{App, Config, Error};

mod emulator;
mod lambda_invoke;
mod rollout;

use emulator::serve_emulator;

#[derive(Parser)]
#[command(name = "wxpm", version, about = "WeChat mini-program plugin management, locally")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the function on an event (a JSON file, or - for stdin) and print the result or the error.
    ///
    /// With neither WX_APPID nor WX_ACCESS_TOKEN set, the embedded WeChat emulator answers, as the demo mini program.
    Invoke {
        /// The event file, or - to read standard input.
        #[arg(value_parser = event_source)]
        event: EventSource,
        /// Send WeChat calls here instead (e.g. a standalone `wxpm emulator`); the demo credentials are used unless
        /// WX_APPID or WX_ACCESS_TOKEN is set.
        #[arg(long)]
        api_base: Option<String>,
        /// The invocation's time limit in seconds, as the function's Lambda timeout.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// A third-party platform's rollouts: one cloud call on many mini programs through the function's queue.
    Rollout(rollout::RolloutArgs),
    /// Third-party platform chores, with the function's own settings (WX_COMPONENT_*, WX_TOKEN_CACHE, WX_API_BASE).
    #[command(subcommand)]
    Platform(PlatformCommand),
    /// Serve the WeChat emulator (plugin and token endpoints) until interrupted.
    Emulator {
        #[arg(long, default_value_t = 8088)]
        port: u16,
        /// Address to listen on. The control endpoint (/__emulator/) answers loopback peers only.
        #[arg(long, default_value = "127.0.0.1")]
        host: IpAddr,
        /// A JSON state file in the format of crates/emulator/src/default_world.json (default: the built-in state).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Write `<appid>.api-security.json` (the function's WX_API_* settings, as a JSON object) for each account
        /// and platform with API security keys into this directory, and keep them there when the emulator stops.
        /// Without it, the files are written only when some account's API security is optional or required, into
        /// `wxpm-emulator-PORT` in the temp directory, and removed when the emulator stops.
        #[arg(long)]
        api_security_dir: Option<PathBuf>,
        /// API security for every account and platform that has keys: off, optional (plain and secured calls) or
        /// required (plain calls refused with 40233). Default: as the state file says (the built-in state: off).
        #[arg(long, value_parser = ["off", "optional", "required"])]
        api_security: Option<String>,
    },
}

#[derive(Subcommand)]
enum PlatformCommand {
    /// Exchange an authorisation code (from the authorisation page's redirect) for the mini program's refresh token,
    /// and store it where the function finds it.
    Exchange { code: String },
    /// List the mini programs whose refresh tokens are stored.
    Authorized,
    /// Ask WeChat to (re)start pushing component_verify_ticket to the authorisation-event URL.
    StartPush,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Invoke { event, api_base, timeout } => invoke(event, api_base, timeout),
        Command::Platform(command) => platform(command),
        Command::Rollout(args) => rollout::run(args),
        Command::Emulator { port, host, state, api_security_dir, api_security } => {
            serve_emulator(SocketAddr::new(host, port), state, api_security_dir, api_security.as_deref())
        }
    }
}

fn invoke(source: EventSource, api_base: Option<String>, timeout: f64) -> ExitCode {
    logging::init(logging::Target::Stderr);
    // Lambda's own limit is 900 s.
    let Some(limit) = Duration::try_from_secs_f64(timeout).ok().filter(|d| !d.is_zero() && d.as_secs() <= 900) else {
        eprintln!("wxpm invoke: --timeout must be a number of seconds above 0 and at most 900");
        return ExitCode::from(2);
    };
    let event = match read_event(source) {
        Ok(event) => event,
        Err(exit) => return exit,
    };
    let own = own_env;
    let configured = ["WX_APPID", "WX_ACCESS_TOKEN", "WX_COMPONENT_APPID"].iter().any(|name| own(name).is_some());
    // Without credentials, the demo mini program: on the embedded emulator, or on --api-base.
    let emulator = match (configured, &api_base) {
        (false, None) => match Emulator::start() {
            Ok(emulator) => {
                eprintln!("wxpm: no WX_APPID set: using the embedded WeChat emulator at {}", emulator.base_url());
                Some(emulator)
            }
            Err(e) => {
                eprintln!("wxpm: cannot start the embedded WeChat emulator: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let base = api_base.or_else(|| emulator.as_ref().map(|e| e.base_url().to_owned()));
    let config = Config::from_lookup(|name| match name {
        "WX_API_BASE" if base.is_some() => base.clone(),
        "WX_APPID" if !configured => Some(DEMO_APPID.to_owned()),
        "WX_SECRET" if !configured => Some(DEMO_SECRET.to_owned()),
        _ => own(name),
    });
    let Some(runtime) = runtime() else { return ExitCode::FAILURE };
    let deadline = Instant::now() + limit;
    let outcome = runtime.block_on(async {
        let app = App::new(&config?.resolve(own).await?)?;
        wx_plugin_manager::edge::handle(&app, event, deadline, "local").await
    });
    report(outcome)
}

/// The event, from its file or standard input; else how the command ends: a usage error (2) for input it cannot read,
/// and, as the function takes a payload, an `InvalidEvent` for whatever is not a JSON value.
fn read_event(source: EventSource) -> Result<Value, ExitCode> {
    let bytes = match source {
        EventSource::File(bytes) => bytes,
        EventSource::Stdin => read_stdin().map_err(|e| {
            eprintln!("error: cannot read the event from standard input: {e}");
            ExitCode::from(2)
        })?,
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        let detail = format!("the event is not JSON: {e}");
        report(Err(Error::InvalidEvent { method: present::NO_METHOD, detail }))
    })
}

/// A platform chore, bounded like one invocation (10 s).
fn platform(command: PlatformCommand) -> ExitCode {
    logging::init(logging::Target::Stderr);
    let own = own_env;
    warn_of_a_memory_store(
        "platform",
        "nothing stored outlives this command (set dynamodb://<table> or a redis:// URL)",
    );
    let Some(runtime) = runtime() else { return ExitCode::FAILURE };
    let deadline = Instant::now() + Duration::from_secs(10);
    let outcome = runtime.block_on(async {
        let app = App::new(&Config::from_env()?.resolve(own).await?)?;
        let Some(platform) = app.caller.tokens.platform() else {
            return Err(Error::Config("WX_COMPONENT_APPID and its settings are not set".to_owned()));
        };
        // A chore, not a plugin call: its errors name no method.
        let chore = |e: TokenError| e.for_method(present::NO_METHOD);
        Ok(match command {
            PlatformCommand::Exchange { code } => {
                let authorization = platform.exchange_code(&app.caller.client, &code, deadline).await.map_err(chore)?;
                serde_json::json!({
                    "authorizerAppid": authorization.authorizer_appid,
                    "pluginPermission": authorization.plugin_permission,
                })
            }
            PlatformCommand::Authorized => serde_json::json!({ "authorized": platform.authorized(deadline).await.map_err(chore)? }),
            PlatformCommand::StartPush => {
                serde_json::json!({ "errMsg": platform.start_push(&app.caller.client, deadline).await.map_err(chore)?, "errCode": 0 })
            }
        })
    });
    report(outcome)
}

/// This process's own setting `name`: set and not blank, as the function reads its environment.
fn own_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Says on stderr what `wxpm <command>` misses when the store is this process's memory (`consequence`).
fn warn_of_a_memory_store(command: &str, consequence: &str) {
    if own_env("WX_TOKEN_CACHE").is_none_or(|cache| cache == "memory") {
        eprintln!("wxpm {command}: WX_TOKEN_CACHE is memory: {consequence}");
    }
}

/// The single-threaded runtime a command runs on, as the Lambda binary's; says why on stderr when there is none.
fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| eprintln!("wxpm: cannot start an async runtime: {e}"))
        .ok()
}

/// Where `wxpm invoke` takes its event from.
#[derive(Clone)]
enum EventSource {
    /// The file's bytes, read while the command line is parsed.
    File(Vec<u8>),
    /// Standard input, read when the event is needed.
    Stdin,
}

fn read_stdin() -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads the event file while the command line is parsed: a file that cannot be read is the command line's own
/// usage error (clap's message naming the file, exit status 2), never an answer the function would give.
fn event_source(arg: &str) -> Result<EventSource, String> {
    if arg == "-" {
        return Ok(EventSource::Stdin);
    }
    std::fs::read(arg).map(EventSource::File).map_err(|e| format!("cannot read the event file: {e}"))
}

/// Prints the result, or the error as Lambda reports it, on stdout; fails the exit status on an error.
fn report(outcome: Result<Value, Error>) -> ExitCode {
    let (printed, code) = match outcome {
        Ok(result) => (result, ExitCode::SUCCESS),
        Err(e) => (e.to_lambda_json(), ExitCode::FAILURE),
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{}", serde_json::to_string_pretty(&printed).unwrap_or_default());
    code
}
