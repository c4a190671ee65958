//! The function as users deploy it (the `bootstrap` that `sam build` makes, built here by `sam build` itself), under
//! a local Runtime API that sends a fresh trace id with every invocation as Lambda does, against the emulator; side
//! by side, in one run, with two references built by what `sam build` runs (`cargo lambda build --release`, with
//! `--arm64` for arm64: the same target, the same profile):
//!
//! - `echo` (benches/references/echo.rs): lambda_runtime's loop on a current-thread runtime, returning the event;
//! - `proxy` (benches/references/proxy.rs): the same, POSTing the event to `/wxa/plugin` with a fixed token through one
//!   reqwest client, returning WeChat's JSON, without a logging subscriber.
//!
//! The three processes live together and take their invocations in interleaved batches, so the machine's noise falls
//! on all of them alike. Reported per function: resident-set growth per invocation (after a warm-up, over the whole
//! run), warm CPU per invocation (the time the process ran, from the scheduler), peak RSS, cold start (spawn to first poll, median),
//! output lines per invocation and the binary's size. `cargo bench --bench lambda`; ARCH=arm64 measures the arm64
//! artefact under qemu-user (growth and answers: its CPU and times are the emulator's, not a Graviton's);
//! INVOCATIONS (default 30000, 3000 for arm64) sets each function's share; CANDIDATES
//! (`name=path/to/bootstrap …`) adds other builds of the function to the run, to compare a change side by side;
//! STORES (`redis`, `dynamodb`, or both) adds the same artefact configured with that shared store (a local
//! redis-server or dynalite, started here) beside the default (memory) configuration.

#[path = "../tests/support/runtime_api.rs"]
#[allow(dead_code)]
mod runtime_api;

#[path = "../tests/support/dynalite.rs"]
#[allow(dead_code)]
mod dynalite;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime_api::{Outcome, RuntimeApi};
use serde_json::{json, Value};
use wechat_emulator::{Emulator, DEMO_APPID, DEMO_SECRET};

const COLD_STARTS: usize = 21;
const WARM_UP: usize = 1_000;
const BATCH: usize = 1_000;

struct Subject {
    name: String,
    binary: PathBuf,
    /// What runs the binary: nothing for the machine's own architecture, qemu-user for another.
    runner: &'static [&'static str],
    env: Vec<(String, String)>,
    /// Whether its answer to `{"action":"list"}` is checked as success (`errCode` for the function, WeChat's
    /// `errcode` for the proxy); the echo just returns the event.
    check: fn(&Value) -> bool,
}

/// One live function process and what is measured of it.
struct Running {
    child: Child,
    api: RuntimeApi,
    lines: Arc<AtomicUsize>,
    rss_after_warm_up_kib: u64,
    cpu_us: u64,
    /// Of the CPU time, the kernel's share, in clock ticks (`/proc/<pid>/stat`: coarse, but a run spans seconds).
    kernel_ticks: u64,
    all_ticks: u64,
    served: usize,
}

/// The architecture measured, as the template's `Architecture` parameter names it.
#[derive(Clone, Copy, PartialEq)]
enum Arch {
    X86_64,
    Arm64,
}

impl Arch {
    fn from_env() -> Arch {
        match std::env::var("ARCH").as_deref() {
            Err(_) | Ok("x86_64") => Arch::X86_64,
            Ok("arm64") => Arch::Arm64,
            Ok(other) => panic!("ARCH is x86_64 or arm64, not {other}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    /// What `sam build` adds to `cargo lambda build` for the architecture.
    fn lambda_flags(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &[],
            Arch::Arm64 => &["--arm64"],
        }
    }

    fn runner(self) -> &'static [&'static str] {
        match self {
            Arch::X86_64 => &[],
            Arch::Arm64 => &["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"],
        }
    }
}

/// The function's `bootstrap` as `sam build` makes it for `arch` (into target/sam/<arch>, leaving .aws-sam alone).
fn sam_build(root: &Path, arch: Arch) -> PathBuf {
    let build_dir = root.join("target/sam").join(arch.name());
    let status = Command::new("sam")
        .args(["build", "--parameter-overrides", &format!("Architecture={}", arch.name()), "--build-dir"])
        .arg(&build_dir)
        .arg("--cache-dir")
        .arg(root.join("target/sam").join(format!("cache-{}", arch.name())))
        .env("SAM_CLI_TELEMETRY", "0")
        .current_dir(root)
        .status()
        .expect("sam runs (pip install aws-sam-cli)");
    assert!(status.success(), "sam build for {} failed", arch.name());
    build_dir.join("WxPluginManagerFunction/bootstrap")
}

/// A reference, built as `sam build` builds the function (into target/lambda/<arch>/<name>/bootstrap).
fn lambda_build_example(root: &Path, arch: Arch, example: &str) -> PathBuf {
    let lambda_dir = root.join("target/lambda").join(arch.name());
    let status = Command::new("cargo")
        .args(["lambda", "build", "--release", "--example", example])
        .args(arch.lambda_flags())
        .arg("--lambda-dir")
        .arg(&lambda_dir)
        .current_dir(root)
        .status()
        .expect("cargo lambda runs (pip install cargo-lambda)");
    assert!(status.success(), "cargo lambda build --example {example} failed");
    lambda_dir.join(example).join("bootstrap")
}

fn spawn(subject: &Subject, api: &RuntimeApi) -> (Child, Arc<AtomicUsize>) {
    let binary = subject.binary.as_os_str();
    let mut command = match subject.runner.split_first() {
        Some((runner, args)) => {
            let mut command = Command::new(runner);
            command.args(args.iter()).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    let mut child = command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
        .env("AWS_LAMBDA_FUNCTION_NAME", &subject.name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .envs(subject.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // Lambda reads the function's output through a pipe: so does the bench, counting lines.
    let lines = Arc::new(AtomicUsize::new(0));
    for pipe in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as _),
    ]
    .into_iter()
    .flatten()
    {
        let lines = lines.clone();
        std::thread::spawn(move || {
            let mut pipe = pipe;
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                lines.fetch_add(chunk[..n].iter().filter(|&&b| b == b'\n').count(), Ordering::Relaxed);
            }
        });
    }
    (child, lines)
}

/// CPU time a process has run, all its threads, in microseconds: the scheduler's own account
/// (`/proc/<pid>/task/*/schedstat`, nanoseconds), not the 10 ms ticks of `/proc/<pid>/stat`.
fn cpu_us(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let ns: u64 = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns / 1000
}

/// User and kernel CPU time of a process in clock ticks (`utime`, `stime` of `/proc/<pid>/stat`).
fn user_kernel_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces: the fields are counted after its closing parenthesis.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = after_name.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    (fields[11], fields[12])
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn invoke_ok(api: &RuntimeApi, subject: &Subject) {
    match api.invoke(&json!({"action":"list"}), Duration::from_secs(10)) {
        Outcome::Response(r) if (subject.check)(&r) => {}
        other => panic!("{}: {other:?}", subject.name),
    }
}

fn cold_start_ms(subject: &Subject) -> f64 {
    let api = RuntimeApi::start();
    let started = Instant::now();
    let (mut child, _) = spawn(subject, &api);
    assert!(api.wait_for_polls(1, Duration::from_secs(10)), "{} never polled", subject.name);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let _ = child.kill();
    let _ = child.wait();
    ms
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes --bench; a filter argument would be for criterion benches, not this one.
    let arch = Arch::from_env();
    let default_invocations = if arch == Arch::X86_64 { 30_000 } else { 3_000 };
    let invocations: usize =
        std::env::var("INVOCATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(default_invocations);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let deployed = sam_build(&root, arch);
    let echo = lambda_build_example(&root, arch, "echo");
    let proxy = lambda_build_example(&root, arch, "proxy");
    let runner = arch.runner();

    let emulator = Emulator::start().unwrap();
    emulator.edit_world(|w| w.settings.stable_minute_quota = u32::MAX);
    let token = emulator.authorizer_token(DEMO_APPID);
    let base = emulator.base_url().to_owned();
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let function = |name: &str, binary: PathBuf| Subject {
        name: name.to_owned(),
        binary,
        runner,
        env: vec![pair("WX_APPID", DEMO_APPID), pair("WX_SECRET", DEMO_SECRET), pair("WX_API_BASE", &base)],
        check: |r| r["errCode"] == 0,
    };
    let mut subjects = vec![
        function("wx-plugin-manager", deployed.clone()),
        Subject {
            name: "bare proxy".into(),
            binary: proxy,
            runner,
            env: vec![pair("WX_ACCESS_TOKEN", &token), pair("WX_API_BASE", &base)],
            check: |r| r["errcode"] == 0,
        },
        Subject { name: "bare echo".into(), binary: echo, runner, env: vec![], check: |_| true },
    ];
    // Kept alive for the whole run.
    let mut stores: Vec<Box<dyn std::any::Any>> = Vec::new();
    for store in std::env::var("STORES").unwrap_or_default().split([',', ' ']).filter(|s| !s.is_empty()) {
        let mut subject = function(&format!("wx-plugin-manager ({store})"), deployed.clone());
        match store {
            "redis" => {
                let server = testkit::redis::RedisServer::start();
                subject.env.push(pair("WX_TOKEN_CACHE", &server.url()));
                stores.push(Box::new(server));
            }
            "dynamodb" => {
                let server = dynalite::Dynalite::start();
                subject.env.push(pair("WX_TOKEN_CACHE", &server.token_cache()));
                subject.env.extend(server.aws_env().into_iter().map(|(k, v)| (k.to_owned(), v)));
                stores.push(Box::new(server));
            }
            other => panic!("STORES takes redis and dynamodb, not {other}"),
        }
        subjects.push(subject);
    }
    for candidate in std::env::var("CANDIDATES").unwrap_or_default().split_whitespace() {
        let (name, path) = candidate.split_once('=').expect("CANDIDATES holds name=path pairs");
        subjects.push(function(name, PathBuf::from(path)));
    }
    for s in &subjects {
        let out = Command::new("file").arg(&s.binary).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        eprintln!("{}: {}", s.name, out.unwrap_or_default().trim());
    }

    // Cold starts, interleaved.
    let mut starts = vec![Vec::new(); subjects.len()];
    for _ in 0..COLD_STARTS {
        for (i, subject) in subjects.iter().enumerate() {
            starts[i].push(cold_start_ms(subject));
        }
    }

    // Warm runs: all three alive, served in turns.
    let mut running: Vec<Running> = subjects
        .iter()
        .map(|subject| {
            let api = RuntimeApi::start();
            let (child, lines) = spawn(subject, &api);
            for _ in 0..WARM_UP {
                invoke_ok(&api, subject);
            }
            let pid = child.id();
            let rss_after_warm_up_kib = status_kib(pid, "VmRSS:");
            Running { child, api, lines, rss_after_warm_up_kib, cpu_us: 0, kernel_ticks: 0, all_ticks: 0, served: 0 }
        })
        .collect();
    while running[0].served < invocations {
        for (run, subject) in running.iter_mut().zip(&subjects) {
            let n = BATCH.min(invocations - run.served);
            let before = cpu_us(run.child.id());
            let (user_before, kernel_before) = user_kernel_ticks(run.child.id());
            for _ in 0..n {
                invoke_ok(&run.api, subject);
            }
            run.cpu_us += cpu_us(run.child.id()) - before;
            let (user, kernel) = user_kernel_ticks(run.child.id());
            run.kernel_ticks += kernel - kernel_before;
            run.all_ticks += user + kernel - user_before - kernel_before;
            run.served += n;
        }
    }
    std::thread::sleep(Duration::from_millis(200)); // the last lines reach the pipe

    let echo_cold = median(starts[2].clone());
    let proxy_cpu = running[1].cpu_us as f64 / invocations as f64;
    let emulated = match arch {
        Arch::X86_64 => "",
        Arch::Arm64 => " Under qemu-user: the CPU and the times are qemu's, not a Graviton's; read growth and answers.",
    };
    let mut table = format!(
        "{} artefacts, {invocations} `list` invocations per function (unique trace ids) after {WARM_UP} warm-up \
         ones, in batches of {BATCH} taken in turn; cold start is the median of {COLD_STARTS} starts.{emulated}\n\n\
         | function | RSS growth / invocation | warm CPU / invocation | of it in the kernel | × bare proxy | peak RSS | cold start | × bare echo | lines / invocation | binary |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        arch.name()
    );
    for ((run, subject), starts) in running.iter_mut().zip(&subjects).zip(starts) {
        let pid = run.child.id();
        let (rss_end, peak) = (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"));
        let growth = (rss_end as f64 - run.rss_after_warm_up_kib as f64) * 1024.0 / invocations as f64;
        let cpu = run.cpu_us as f64 / invocations as f64;
        let kernel = 100.0 * run.kernel_ticks as f64 / run.all_ticks.max(1) as f64;
        let cold = median(starts);
        let lines = run.lines.load(Ordering::Relaxed) as f64 / (invocations + WARM_UP) as f64;
        let size = std::fs::metadata(&subject.binary).unwrap().len() as f64 / 1_048_576.0;
        let line = format!(
            "| {} | {growth:.2} B ({:.2} → {:.2} MiB) | {cpu:.1} µs | {kernel:.0}% | {:.2} | {:.2} MiB | {cold:.2} ms | {:.2} | {lines:.2} | {size:.2} MiB |\n",
            subject.name,
            run.rss_after_warm_up_kib as f64 / 1024.0,
            rss_end as f64 / 1024.0,
            cpu / proxy_cpu,
            peak as f64 / 1024.0,
            cold / echo_cold,
        );
        eprint!("{line}");
        table.push_str(&line);
        let _ = run.child.kill();
        let _ = run.child.wait();
    }
    println!("\n{table}");
    let out = root.join(format!("target/bench-lambda-{}.md", arch.name()));
    std::fs::write(&out, &table).unwrap();
    println!("(also written to {})", out.display());
    drop(stores);
}
