//! The whole function as Lambda runs it: the release binary under a local Runtime API, against the emulator, side by
//! side with two references built in the same workspace — `echo` (the smallest function) and `naive` (one HTTP call
//! with a fixed token on tokio's default runtime). Reports warm CPU per invocation (the process's own user+sys),
//! invocations per second, cold start to the first poll, peak RSS over the run (and whether RSS grows), and the
//! stripped binary size. `cargo bench --bench lambda`; INVOCATIONS (default 10000) sets the run's length.

#[path = "../tests/support/runtime_api.rs"]
#[allow(dead_code)]
mod runtime_api;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use runtime_api::{Outcome, RuntimeApi};
use serde_json::json;
use wx_plugin_manager::emulator::{Emulator, DEMO_APPID, DEMO_SECRET};

const COLD_STARTS: usize = 21;
const WARM_UP: usize = 500;

struct Subject {
    name: &'static str,
    binary: PathBuf,
    env: Vec<(String, String)>,
    /// Whether its answer to `{"action":"list"}` is the function's result (the echo just returns the event).
    answers_list: bool,
}

struct Figures {
    /// RSS without trace ids (our code's own growth), after warm-up → at the end.
    rss_untraced_kib: (u64, u64),
    cpu_per_invocation_us: f64,
    per_second: f64,
    cold_start_ms: f64,
    rss_after_warm_up_kib: u64,
    rss_end_kib: u64,
    peak_rss_kib: u64,
    size_bytes: u64,
}

fn build(root: &Path) {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--bin", "wx-plugin-manager", "--example", "echo", "--example", "naive"])
        .current_dir(root)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the release build failed");
}

fn spawn(subject: &Subject, api: &RuntimeApi) -> Child {
    Command::new(&subject.binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
        .env("AWS_LAMBDA_FUNCTION_NAME", subject.name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .envs(subject.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts")
}

/// user+sys CPU of a process, in microseconds.
fn cpu_us(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks * 1_000_000 / clock_ticks()
}

fn clock_ticks() -> u64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().ok();
    out.and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(100)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn invoke_ok(api: &RuntimeApi, subject: &Subject) {
    match api.invoke(&json!({"action":"list"}), Duration::from_secs(10)) {
        Outcome::Response(r) if !subject.answers_list || r["errCode"] == 0 => {}
        other => panic!("{}: {other:?}", subject.name),
    }
}

/// One function process serving `invocations` after the warm-up, as measured from outside.
struct WarmRun {
    rss_after_warm_up_kib: u64,
    rss_end_kib: u64,
    peak_rss_kib: u64,
    cpu_us: u64,
    wall: Duration,
}

fn warm_run(subject: &Subject, api: &RuntimeApi, invocations: usize) -> WarmRun {
    let mut child = spawn(subject, api);
    let pid = child.id();
    for _ in 0..WARM_UP {
        invoke_ok(api, subject);
    }
    let rss_after_warm_up_kib = status_kib(pid, "VmRSS:");
    let (cpu_before, started) = (cpu_us(pid), Instant::now());
    let every = (invocations / 10).max(1);
    let mut series = Vec::new();
    for i in 0..invocations {
        invoke_ok(api, subject);
        if (i + 1) % every == 0 {
            let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
            series.push((status_kib(pid, "VmRSS:"), fds));
        }
    }
    let wall = started.elapsed();
    eprintln!("{}: (RSS KiB, open fds) every {every} invocations: {series:?}", subject.name);
    let run = WarmRun {
        rss_after_warm_up_kib,
        rss_end_kib: status_kib(pid, "VmRSS:"),
        peak_rss_kib: status_kib(pid, "VmHWM:"),
        cpu_us: cpu_us(pid) - cpu_before,
        wall,
    };
    let _ = child.kill();
    let _ = child.wait();
    run
}

fn measure(subject: &Subject, invocations: usize) -> Figures {
    let mut starts: Vec<f64> = (0..COLD_STARTS)
        .map(|_| {
            let api = RuntimeApi::start();
            let started = Instant::now();
            let mut child = spawn(subject, &api);
            assert!(api.wait_for_polls(1, Duration::from_secs(10)), "{} never polled", subject.name);
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let _ = child.kill();
            let _ = child.wait();
            ms
        })
        .collect();
    starts.sort_by(f64::total_cmp);

    // Without trace ids, lambda_runtime's per-invocation `set_var("_X_AMZN_TRACE_ID", …)` (which grows every
    // function on glibc) is out of the picture: what growth remains is the function's own.
    let untraced = warm_run(subject, &RuntimeApi::start_without_trace_ids(), invocations);
    let run = warm_run(subject, &RuntimeApi::start(), invocations);
    Figures {
        rss_untraced_kib: (untraced.rss_after_warm_up_kib, untraced.rss_end_kib),
        cpu_per_invocation_us: run.cpu_us as f64 / invocations as f64,
        per_second: invocations as f64 / run.wall.as_secs_f64(),
        cold_start_ms: starts[COLD_STARTS / 2],
        rss_after_warm_up_kib: run.rss_after_warm_up_kib,
        rss_end_kib: run.rss_end_kib,
        peak_rss_kib: run.peak_rss_kib,
        size_bytes: std::fs::metadata(&subject.binary).unwrap().len(),
    }
}

fn main() {
    // `cargo bench` passes --bench; a filter argument would be for criterion benches, not this one.
    let invocations: usize = std::env::var("INVOCATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    build(&root);
    let release = root.join("target/release");

    let emulator = Emulator::start().unwrap();
    emulator.edit_world(|w| w.settings.stable_minute_quota = u32::MAX);
    let token = emulator.authorizer_token(DEMO_APPID);
    let base = emulator.base_url().to_owned();
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let subjects = [
        Subject {
            name: "wx-plugin-manager",
            binary: release.join("wx-plugin-manager"),
            env: vec![pair("WX_APPID", DEMO_APPID), pair("WX_SECRET", DEMO_SECRET), pair("WX_API_BASE", &base)],
            answers_list: true,
        },
        Subject {
            name: "naive (reference floor)",
            binary: release.join("examples/naive"),
            env: vec![pair("WX_ACCESS_TOKEN", &token), pair("WX_API_BASE", &base)],
            answers_list: false,
        },
        Subject { name: "echo (baseline)", binary: release.join("examples/echo"), env: vec![], answers_list: false },
    ];

    let mut table = format!(
        "{invocations} sequential `list` invocations per function after {WARM_UP} warm-up ones; cold start is the median \
         of {COLD_STARTS} starts.\n\n\
         | function | warm CPU / invocation | invocations / s | cold start to first poll | RSS after warm-up → end | peak RSS | RSS without trace ids | stripped binary |\n\
         |---|---|---|---|---|---|---|---|\n"
    );
    for subject in &subjects {
        let f = measure(subject, invocations);
        let line = format!(
            "| {} | {:.1} µs | {:.0} | {:.2} ms | {:.2} → {:.2} MiB | {:.2} MiB | {:.2} → {:.2} MiB | {:.2} MiB |\n",
            subject.name,
            f.cpu_per_invocation_us,
            f.per_second,
            f.cold_start_ms,
            f.rss_after_warm_up_kib as f64 / 1024.0,
            f.rss_end_kib as f64 / 1024.0,
            f.peak_rss_kib as f64 / 1024.0,
            f.rss_untraced_kib.0 as f64 / 1024.0,
            f.rss_untraced_kib.1 as f64 / 1024.0,
            f.size_bytes as f64 / 1_048_576.0,
        );
        eprint!("{line}");
        table.push_str(&line);
    }
    println!("\n{table}");
    let out = root.join("target/bench-lambda.md");
    std::fs::write(&out, &table).unwrap();
    println!("(also written to {})", out.display());
}
