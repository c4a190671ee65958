//! `wxpm`: the function's local face. `wxpm emulator` serves the WeChat emulator.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wx_plugin_manager::emulator::{Emulator, World, DEMO_APPID, DEMO_PLUGIN, DEMO_SECRET};

#[derive(Parser)]
#[command(name = "wxpm", version, about = "WeChat mini-program plugin management, locally")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the WeChat emulator (plugin and token endpoints) until interrupted.
    Emulator {
        #[arg(long, default_value_t = 8088)]
        port: u16,
        /// Address to listen on. The control endpoint (/__emulator/) answers loopback peers only.
        #[arg(long, default_value = "127.0.0.1")]
        host: IpAddr,
        /// A JSON state file in the format of src/emulator/default_world.json (default: the built-in state).
        #[arg(long)]
        state: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Emulator { port, host, state } => serve_emulator(SocketAddr::new(host, port), state),
    }
}

fn serve_emulator(addr: SocketAddr, state: Option<PathBuf>) -> ExitCode {
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
    let emulator = match Emulator::start_with(world, addr) {
        Ok(emulator) => emulator,
        Err(e) => {
            eprintln!("wxpm emulator: cannot start on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A closed stdout (a test that read only the first line) must not stop the server.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "WeChat emulator listening on {}", emulator.base_url());
    let _ = writeln!(
        out,
        "demo mini program: WX_APPID={DEMO_APPID} WX_SECRET={DEMO_SECRET} (plugin it develops: {DEMO_PLUGIN})"
    );
    let _ = writeln!(out, "control endpoint: {}/__emulator/state (loopback only); Ctrl-C stops", emulator.base_url());
    let _ = out.flush();
    emulator.join();
    ExitCode::SUCCESS
}
