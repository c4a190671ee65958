//! `wxpm rollout`: start a rollout and follow it to the end, count it, report it. The control events run in this
//! process from the environment's settings (as `wxpm invoke` runs a call), or on a deployed function through Lambda's
//! Invoke API (`--function`).

mod show;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use wx_plugin_manager::observe::logging;
use wx_plugin_manager::{App, Config};

use crate::lambda_invoke::{Failure, LambdaInvoke};
use show::{Counts, Progress};

/// Start rounds in a row that may send nothing before giving up (a queue refusing for a moment gets a second chance).
const IDLE_ROUNDS: u32 = 3;
/// Status polls in a row that may fail before the wait gives up (a throttled or cold function gets a few more).
const FAILED_POLLS: u32 = 5;
/// `report`'s page size: its default; 1000 targets answer in well under Lambda's 6 MB.
const PAGE: u64 = 1000;

#[derive(Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    command: RolloutCommand,
    #[command(flatten)]
    via: Via,
}

/// Where the control events run.
#[derive(Args)]
struct Via {
    /// Drive this deployed function (name or ARN) through Lambda's Invoke API, with the AWS CLI's credentials and
    /// region. Without it, the function's library runs in this process from the environment, as `wxpm invoke`.
    #[arg(long, global = true)]
    function: Option<String>,
    /// Lambda's API at this URL (e.g. `cargo lambda watch`'s http://127.0.0.1:9000); default AWS_ENDPOINT_URL_LAMBDA,
    /// else AWS_ENDPOINT_URL, else https://lambda.<region>.amazonaws.com.
    #[arg(long, global = true)]
    endpoint_url: Option<String>,
    /// The AWS CLI profile for --function's credentials and region (default: as the AWS CLI, AWS_PROFILE).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// In this process: each call's time limit in seconds, as the function's Lambda timeout.
    #[arg(long, global = true, default_value_t = 10.0)]
    timeout: f64,
}

#[derive(Subcommand)]
enum RolloutCommand {
    /// Start (or resume) a rollout: send every target not settled yet, then follow it until all are settled.
    Start {
        /// The rollout's id: 1 to 64 letters, digits, '-', '_' or '.'.
        #[arg(long, value_parser = rollout_id)]
        id: String,
        /// The cloud call to run on each target, a JSON file without authorizerAppid.
        #[arg(long, value_parser = event_file)]
        event: Value,
        /// A file of appids, one a line or a JSON array (default: every authorised mini program).
        #[arg(long, value_parser = targets_file)]
        targets: Option<Appids>,
        /// Return once the targets are sent, without following the rollout.
        #[arg(long)]
        detach: bool,
        /// Seconds between status polls while following.
        #[arg(long, default_value_t = 2.0, value_parser = interval)]
        interval: f64,
    },
    /// The rollout's targets counted by state, and by errCode.
    Status {
        #[arg(long, value_parser = rollout_id)]
        id: String,
    },
    /// Every target's outcome, as CSV or JSON lines.
    Report {
        #[arg(long, value_parser = rollout_id)]
        id: String,
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// Write here (whole, or not at all) instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// The targets file's appids (a type of its own: clap would take a `Vec` for a repeated option).
#[derive(Clone)]
struct Appids(Vec<String>);

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Jsonl,
}

pub fn run(args: RolloutArgs) -> ExitCode {
    let via = args.via;
    if via.function.is_none() && (via.endpoint_url.is_some() || via.profile.is_some()) {
        eprintln!("wxpm rollout: --endpoint-url and --profile are for --function (a deployed function)");
        return ExitCode::from(2);
    }
    let Some(limit) = Duration::try_from_secs_f64(via.timeout).ok().filter(|d| !d.is_zero() && d.as_secs() <= 900)
    else {
        eprintln!("wxpm rollout: --timeout must be a number of seconds above 0 and at most 900");
        return ExitCode::from(2);
    };
    let Some(runtime) = crate::runtime() else { return ExitCode::FAILURE };
    runtime.block_on(async {
        let function = match Function::new(&via, limit).await {
            Ok(function) => function,
            Err(why) => {
                eprintln!("wxpm rollout: {why}");
                return ExitCode::FAILURE;
            }
        };
        match args.command {
            RolloutCommand::Start { id, event, targets, detach, interval } => {
                start(&function, &id, event, targets, detach, Duration::from_secs_f64(interval)).await
            }
            RolloutCommand::Status { id } => match function.status(&id).await {
                Ok(status) => {
                    print!("{}", show::table(&id, &status));
                    ExitCode::SUCCESS
                }
                Err(e) => fail("status", e),
            },
            RolloutCommand::Report { id, format, output } => report(&function, &id, format, output.as_deref()).await,
        }
    })
}

fn fail(command: &str, failure: Failure) -> ExitCode {
    eprintln!("wxpm rollout {command}: {failure}");
    ExitCode::FAILURE
}

/// The function the control events go to.
enum Function {
    Local { app: App, limit: Duration },
    Lambda(LambdaInvoke),
}

impl Function {
    async fn new(via: &Via, limit: Duration) -> Result<Function, Failure> {
        if let Some(name) = &via.function {
            let invoke = LambdaInvoke::new(name, via.endpoint_url.as_deref(), via.profile.as_deref());
            return invoke.map(Function::Lambda).map_err(Failure::Call);
        }
        // Each poll writes the invocation's record, and a failed call's (at `warn`) would repeat the error this
        // command reports itself: both would bury the progress line. RUST_LOG still asks for them.
        if std::env::var_os("RUST_LOG").is_none() {
            std::env::set_var("RUST_LOG", "error");
        }
        logging::init(logging::Target::Stderr);
        let own = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if own("WX_TOKEN_CACHE").is_none_or(|cache| cache == "memory") {
            eprintln!("wxpm rollout: WX_TOKEN_CACHE is memory: this process sees no rollout the function records (set the function's dynamodb://<table> or redis:// URL)");
        }
        let thrown = |e: wx_plugin_manager::Error| thrown(e.to_lambda_json());
        // A metrics line per poll is noise for a terminal; the deployed function's metrics are its own.
        let config = Config::from_lookup(|name| if name == "WX_METRICS" { Some("off".into()) } else { own(name) });
        let config = config.map_err(thrown)?.resolve(own).await.map_err(thrown)?;
        let app = App::new(&config).map_err(thrown)?;
        Ok(Function::Local { app, limit })
    }

    /// One control event's answer: errCode 0, or the failure.
    async fn call(&self, event: &Value) -> Result<Value, Failure> {
        let answer = match self {
            Function::Local { app, limit } => {
                let deadline = Instant::now() + *limit;
                let answer = wx_plugin_manager::edge::invoke(app, event, deadline, "local").await;
                answer.map_err(|e| thrown(e.to_lambda_json()))?
            }
            Function::Lambda(lambda) => lambda.invoke(event).await?,
        };
        match answer.get("errCode").and_then(Value::as_i64) {
            Some(0) => Ok(answer),
            _ => Err(Failure::Call(format!("the function answered something else than a rollout's answer: {answer}"))),
        }
    }

    async fn status(&self, id: &str) -> Result<Value, Failure> {
        self.call(&json!({ "rollout": "status", "rolloutId": id })).await
    }
}

fn thrown(error: Value) -> Failure {
    let text = |field: &str| error[field].as_str().unwrap_or_default().to_owned();
    Failure::Thrown { error_type: text("errorType"), error_message: text("errorMessage") }
}

async fn start(
    function: &Function,
    id: &str,
    event: Value,
    targets: Option<Appids>,
    detach: bool,
    interval: Duration,
) -> ExitCode {
    let mut request = json!({ "rollout": "start", "rolloutId": id, "event": event });
    if let Some(Appids(targets)) = targets {
        request["targets"] = json!(targets);
    }
    let count = |answer: &Value, field: &str| answer[field].as_u64().unwrap_or_default();
    let answer = match function.call(&request).await {
        Ok(answer) => answer,
        Err(e) => return fail("start", e),
    };
    let (total, settled) = (count(&answer, "targets"), count(&answer, "done"));
    eprintln!("wxpm rollout start: {id}: {total} targets, {settled} settled or under way already");
    // A start sends what it can before its deadline; the rollout is recorded now, so later rounds need not repeat
    // the targets.
    if let Some(fields) = request.as_object_mut() {
        fields.remove("targets");
    }
    let (mut remaining, mut idle, mut rounds) = (count(&answer, "remaining"), 0, 1);
    let mut sent = count(&answer, "sent");
    while remaining > 0 {
        if idle == IDLE_ROUNDS {
            eprintln!(
                "wxpm rollout start: {remaining} of {total} targets still unsent after {IDLE_ROUNDS} rounds that sent no \
                 more; those sent go on. Run the same start again to send the rest"
            );
            return ExitCode::FAILURE;
        }
        if idle > 0 {
            tokio::time::sleep(Duration::from_secs(idle.into())).await;
        }
        rounds += 1;
        match function.call(&request).await {
            Ok(answer) if count(&answer, "remaining") < remaining => {
                (remaining, idle) = (count(&answer, "remaining"), 0);
                sent += count(&answer, "sent");
            }
            Ok(_) => idle += 1,
            Err(e) => {
                eprintln!("wxpm rollout start: round {rounds}: {e}");
                idle += 1;
            }
        }
    }
    eprintln!("wxpm rollout start: {id}: {sent} messages sent in {rounds} round(s)");
    if detach {
        println!("rollout {id} started: {total} targets; follow it with `wxpm rollout status --id {id}`");
        return ExitCode::SUCCESS;
    }
    tokio::select! {
        finished = follow(function, id, interval) => match finished {
            Ok(status) => {
                print!("{}", show::table(id, &status));
                ExitCode::SUCCESS
            }
            Err(e) => fail("start", e),
        },
        Ok(()) = tokio::signal::ctrl_c() => {
            eprintln!("\nwxpm rollout start: stopped waiting; the rollout goes on. Follow it with `wxpm rollout status --id {id}`");
            ExitCode::from(130)
        }
    }
}

/// Polls the status until no target is pending, running or retrying: the last status.
async fn follow(function: &Function, id: &str, interval: Duration) -> Result<Value, Failure> {
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let mut failed = 0;
    loop {
        match function.status(id).await {
            Ok(status) => {
                failed = 0;
                let counts = Counts::of(&status);
                progress.draw(&counts);
                if counts.unsettled() == 0 {
                    progress.end();
                    return Ok(status);
                }
            }
            Err(e) if failed + 1 < FAILED_POLLS => {
                failed += 1;
                progress.note(&format!("wxpm rollout: status failed ({failed} in a row): {e}"));
            }
            Err(e) => {
                progress.end();
                return Err(e);
            }
        }
        tokio::time::sleep(interval).await;
    }
}

async fn report(function: &Function, id: &str, format: Format, output: Option<&Path>) -> ExitCode {
    let Some(output) = output else {
        let mut stdout = std::io::stdout().lock();
        return match write_report(function, id, format, &mut stdout).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => fail("report", e),
        };
    };
    // Written aside and renamed when whole: a failure halfway leaves no file that looks like a full report.
    let mut partial = output.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = async {
        let file = std::fs::File::create(&partial)
            .map_err(|e| Failure::Call(format!("cannot write {}: {e}", partial.display())))?;
        let mut out = std::io::BufWriter::new(file);
        let rows = write_report(function, id, format, &mut out).await?;
        out.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .and_then(|()| std::fs::rename(&partial, output))
            .map_err(|e| Failure::Call(format!("cannot write {}: {e}", output.display())))?;
        Ok::<_, Failure>(rows)
    };
    match written.await {
        Ok(rows) => {
            eprintln!("wxpm rollout report: {rows} targets written to {}", output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            fail("report", e)
        }
    }
}

/// Pages through the report, writing each page as it comes: how many targets.
async fn write_report(function: &Function, id: &str, format: Format, out: &mut impl Write) -> Result<u64, Failure> {
    let io = |e: std::io::Error| Failure::Call(format!("cannot write the report: {e}"));
    let mut after: Option<String> = None;
    let mut rows = 0;
    loop {
        let mut request = json!({ "rollout": "report", "rolloutId": id, "limit": PAGE });
        if let Some(after) = &after {
            request["after"] = json!(after);
        }
        let answer = function.call(&request).await?;
        let Some(targets) = answer["targets"].as_array() else {
            return Err(Failure::Call("the report's answer has no targets list".into()));
        };
        if after.is_none() {
            if let Format::Csv = format {
                writeln!(out, "{}", show::CSV_HEADER.join(",")).map_err(io)?;
            }
        }
        for target in targets {
            match format {
                Format::Csv => writeln!(out, "{}", show::csv_row(target)),
                Format::Jsonl => writeln!(out, "{target}"),
            }
            .map_err(io)?;
            rows += 1;
        }
        match answer["next"].as_str() {
            None => break,
            Some(next) if after.as_deref() == Some(next) => {
                return Err(Failure::Call(format!("the report did not move past {next}")));
            }
            Some(next) => after = Some(next.to_owned()),
        }
    }
    out.flush().map_err(io)?;
    Ok(rows)
}

// The arguments, checked while the command line is parsed: a bad one is a usage error (exit status 2).

fn rollout_id(arg: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&arg.len()) && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then(|| arg.to_owned()).ok_or_else(|| "a rollout id is 1 to 64 letters, digits, '-', '_' or '.'".into())
}

fn event_file(arg: &str) -> Result<Value, String> {
    let bytes = std::fs::read(arg).map_err(|e| format!("cannot read the event file: {e}"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(event)) => Ok(Value::Object(event)),
        Ok(_) => Err("the event file must hold a JSON object (the cloud call)".into()),
        Err(e) => Err(format!("the event file is not JSON: {e}")),
    }
}

fn targets_file(arg: &str) -> Result<Appids, String> {
    let text = std::fs::read_to_string(arg).map_err(|e| format!("cannot read the targets file: {e}"))?;
    let targets: Vec<(String, String)> = if text.trim_start().starts_with('[') {
        let list: Vec<Value> = serde_json::from_str(&text).map_err(|e| format!("the targets file is not JSON: {e}"))?;
        list.into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(appid) => Ok((format!("item {}", i + 1), appid)),
                other => Err(format!("the targets file's item {} is {other}, not an appid", i + 1)),
            })
            .collect::<Result<_, _>>()?
    } else {
        let lines = text.lines().enumerate().map(|(i, line)| (format!("line {}", i + 1), line.trim().to_owned()));
        lines.filter(|(_, line)| !line.is_empty() && !line.starts_with('#')).collect()
    };
    for (place, appid) in &targets {
        let ok =
            (1..=64).contains(&appid.len()) && appid.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !ok {
            return Err(format!("the targets file's {place} ({appid:?}) is not an appid"));
        }
    }
    if targets.is_empty() {
        return Err("the targets file names no appid".into());
    }
    Ok(Appids(targets.into_iter().map(|(_, appid)| appid).collect()))
}

fn interval(arg: &str) -> Result<f64, String> {
    let secs: f64 = arg.parse().map_err(|_| "the interval is a number of seconds".to_owned())?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero() && d.as_secs() <= 3600)
        .map(|_| secs)
        .ok_or_else(|| "the interval must be above 0 and at most 3600 seconds".into())
}
