//! `wxpm rollout`: start a rollout and follow it to the end, count it, report it. The control events run in this
//! process from the environment's settings (as `wxpm invoke` runs a call), or on a deployed function through Lambda's
//! Invoke API (`--function`).

mod args;
mod show;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wx_plugin_manager::observe::logging;
use wx_plugin_manager::{App, Config};

use crate::lambda_invoke::{Failure, LambdaInvoke};
pub use args::RolloutArgs;
use args::{Appids, Format, RolloutCommand, Via};
use show::{Counts, Progress};

/// Start rounds in a row that may send nothing before giving up (a queue refusing for a moment gets a second chance).
const IDLE_ROUNDS: u32 = 3;
/// Status polls in a row that may fail before the wait gives up (a throttled or cold function gets a few more).
const FAILED_POLLS: u32 = 5;
/// `report`'s page size: its default; 1000 targets answer in well under Lambda's 6 MB.
const PAGE: u64 = 1000;

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
    // Boxed: the App is large beside the Invoke client, and there is one of them.
    Local { app: Box<App>, limit: Duration },
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
        let own = crate::own_env;
        crate::warn_of_a_memory_store(
            "rollout",
            "this process sees no rollout the function records (set the function's dynamodb://<table> or redis:// URL)",
        );
        let thrown = |e: wx_plugin_manager::Error| thrown(e.to_lambda_json());
        // A metrics line per poll is noise for a terminal; the deployed function's metrics are its own.
        let config = Config::from_lookup(|name| if name == "WX_METRICS" { Some("off".into()) } else { own(name) });
        let config = config.map_err(thrown)?.resolve(own).await.map_err(thrown)?;
        let app = App::new(&config).map_err(thrown)?;
        Ok(Function::Local { app: Box::new(app), limit })
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
            _ => {
                // Another function's answer, perhaps: enough of it to recognise.
                let text: String = answer.to_string().chars().take(300).collect();
                Err(Failure::Call(format!("the answer is not a rollout's (no errCode 0): {text}")))
            }
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
    // The next round begins after what this one sent (`next`), so nothing queued is queued twice.
    request["after"] = answer["next"].clone();
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
                request["after"] = answer["next"].clone();
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
            let gap = if std::io::stderr().is_terminal() { "\n" } else { "" };
            eprintln!("{gap}wxpm rollout start: stopped waiting; the rollout goes on. Follow it with `wxpm rollout status --id {id}`");
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
