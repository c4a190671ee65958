//! `wxpm rollout`'s command line. The files are read and checked while it is parsed: a bad one is a usage error
//! (exit status 2) before anything runs.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

#[derive(Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub(super) command: RolloutCommand,
    #[command(flatten)]
    pub(super) via: Via,
}

/// Where the control events run.
#[derive(Args)]
pub(super) struct Via {
    /// Drive this deployed function (name or ARN) through Lambda's Invoke API, with the AWS CLI's credentials and
    /// region. Without it, the function's library runs in this process from the environment, as `wxpm invoke`.
    #[arg(long, global = true)]
    pub(super) function: Option<String>,
    /// Lambda's API at this URL (e.g. port 9000 on loopback, `cargo lambda watch`'s); default AWS_ENDPOINT_URL_LAMBDA,
    /// else AWS_ENDPOINT_URL, else the region's Lambda endpoint.
    #[arg(long, global = true)]
    pub(super) endpoint_url: Option<String>,
    /// The AWS CLI profile for --function's credentials and region (default: as the AWS CLI, AWS_PROFILE).
    #[arg(long, global = true)]
    pub(super) profile: Option<String>,
    /// In this process: each call's time limit in seconds, as the function's Lambda timeout.
    #[arg(long, global = true, default_value_t = 10.0)]
    pub(super) timeout: f64,
}

#[derive(Subcommand)]
pub(super) enum RolloutCommand {
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
pub(super) struct Appids(pub(super) Vec<String>);

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum Format {
    Csv,
    Jsonl,
}

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
