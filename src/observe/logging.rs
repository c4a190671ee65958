//! Logs: each invocation writes one JSON line, its `Record` (the log fields and, unless `WX_METRICS=off`, its
//! CloudWatch EMF metrics in the same object); everything else goes through `tracing`.
//!
//! The level is `RUST_LOG` when set, else Lambda's `AWS_LAMBDA_LOG_LEVEL` (the function's application log level),
//! else `info`. `AWS_LAMBDA_LOG_FORMAT=Text` writes `tracing`'s lines as text; records stay JSON, as EMF needs.
//! Whatever the level, the HTTP crates stay at `warn`: their debug and trace lines may name a request's URL (reqwest's
//! do, for the stores' and the Secrets extension's calls), and the WeChat client's URLs carry `access_token` and, on
//! the classic endpoint, the secret.

use std::io::Write;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use tracing::level_filters::LevelFilter;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::metrics::{to_the_microsecond, write_json, Sample};
use crate::clock;

/// Held at `warn` whatever is asked (a target also covers its sub-targets: `hyper` covers `hyper_util`).
const QUIET_HTTP: [&str; 4] = ["reqwest", "hyper", "h2", "rustls"];

/// Where log lines go: Lambda reads stdout; `wxpm` keeps stdout for the result.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The Lambda function's: CloudWatch Logs reads stdout.
    Stdout,
    /// `wxpm`'s: stdout is for the command's result.
    Stderr,
}

/// What [`init`] settled, for the records written outside `tracing`.
#[derive(Debug, Clone, Copy)]
struct LogSettings {
    target: Target,
    /// The level Lambda itself filters JSON lines at (`AWS_LAMBDA_LOG_LEVEL`, JSON format only), when it is above
    /// `INFO`: a record whose log part is off is still labelled with it, or Lambda would drop its metrics.
    lambda_floor: Option<&'static str>,
}

static SETTINGS: OnceLock<LogSettings> = OnceLock::new();

/// `tracing`'s level for Lambda's application log level (`FATAL` has no match in `tracing`).
fn lambda_level(value: &str) -> Option<LevelFilter> {
    Some(match value.to_ascii_uppercase().as_str() {
        "TRACE" => LevelFilter::TRACE,
        "DEBUG" => LevelFilter::DEBUG,
        "INFO" => LevelFilter::INFO,
        "WARN" => LevelFilter::WARN,
        "ERROR" | "FATAL" => LevelFilter::ERROR,
        _ => return None,
    })
}

/// `RUST_LOG`'s `target=level` directives (a plain filter: no regular expressions to compile at cold start), or
/// Lambda's level; the HTTP crates held at `warn` either way.
fn filter(rust_log: Option<&str>, lambda: Option<LevelFilter>) -> Targets {
    let asked = rust_log
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(lambda.unwrap_or(LevelFilter::INFO)));
    let mut filter = Targets::new().with_default(asked.default_level().unwrap_or(LevelFilter::OFF));
    for (target, level) in asked.iter() {
        if !QUIET_HTTP.iter().any(|quiet| target.starts_with(quiet)) {
            filter = filter.with_target(target, level);
        }
    }
    filter.with_targets(QUIET_HTTP.map(|quiet| (quiet, LevelFilter::WARN)))
}

/// Sets up logging once per process, to `target`, at the level and format the environment asks (see above); a
/// second call keeps the first setup.
pub fn init(target: Target) {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let lambda = env("AWS_LAMBDA_LOG_LEVEL").as_deref().and_then(lambda_level);
    let text = env("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("text"));
    let filter = filter(env("RUST_LOG").as_deref(), lambda);
    let lambda_floor = match lambda {
        Some(LevelFilter::WARN) if !text => Some("WARN"),
        Some(LevelFilter::ERROR) if !text => Some("ERROR"),
        _ => None,
    };
    let _ = SETTINGS.set(LogSettings { target, lambda_floor });
    let lines = || tracing_subscriber::fmt::layer().with_target(false).with_ansi(false);
    let json = lines().json().with_current_span(false).with_span_list(false).flatten_event(true);
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests) keeps the first subscriber.
    let _ = match (target, text) {
        (Target::Stdout, false) => registry.with(json).try_init(),
        (Target::Stderr, false) => registry.with(json.with_writer(std::io::stderr)).try_init(),
        (Target::Stdout, true) => registry.with(lines()).try_init(),
        (Target::Stderr, true) => registry.with(lines().with_writer(std::io::stderr)).try_init(),
    };
}

/// How an HTTP request through a gateway went, for its invocation's record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Http {
    /// Which gateway sent the request (`rest_api`, `http_api`, `function_url`, `alb`).
    pub gateway: &'static str,
    /// What authenticated it; `None` when it was refused.
    pub authorised_by: Option<&'static str>,
    /// The HTTP status answered.
    pub status: u16,
}

/// One invocation, as its one line tells it.
#[derive(Debug, Clone)]
pub(crate) struct Record<'a> {
    /// The request id, errCode, latency and usage: the metrics' figures, which the log fields repeat.
    pub sample: Sample<'a>,
    /// `INFO` for an answer, `WARN` for a failure or a refusal.
    pub level: Level,
    /// The event's own `action`, even one we do not know (it is escaped like any JSON string).
    pub action: &'a str,
    /// The failure's `errorType`, when it has one.
    pub error_type: Option<&'static str>,
    /// The failure's errMsg, or why the edge refused; `None` for a success.
    pub err_msg: Option<&'a str>,
    /// The mini program an authorisation push (or a rollout's record) was about.
    pub authorizer: Option<&'a str>,
    /// The rollout a queue record belongs to, and the state it left its target in.
    pub rollout: Option<&'a super::RolloutPart>,
    /// The X-Ray trace of the invocation, when Lambda sent one.
    pub xray_trace_id: Option<&'a str>,
    /// The gateway's part, when the request came through one.
    pub http: Option<Http>,
}

impl Record<'_> {
    /// Writes the record as one line: its log fields if its level is on, its metrics if `metrics`.
    pub fn emit(&self, metrics: bool) {
        let log = match self.level {
            Level::INFO => tracing::enabled!(Level::INFO),
            _ => tracing::enabled!(Level::WARN),
        };
        if !log && !metrics {
            return;
        }
        let settings = SETTINGS.get().copied().unwrap_or(LogSettings { target: Target::Stdout, lambda_floor: None });
        let now = clock::now();
        let mut line = Vec::with_capacity(640);
        line.push(b'{');
        if log {
            self.write_log_members(&mut line, now);
        } else if let Some(floor) = settings.lambda_floor {
            line.extend_from_slice(br#""level":""#);
            line.extend_from_slice(floor.as_bytes());
            line.extend_from_slice(br#"","message":"metrics""#);
        }
        if metrics {
            if line.len() > 1 {
                line.push(b',');
            }
            self.sample.write_members(&mut line, clock::unix_ms(now));
        }
        line.extend_from_slice(b"}\n");
        // One write of the whole line, so that concurrent invocations' lines never interleave.
        let _ = match settings.target {
            Target::Stdout => std::io::stdout().lock().write_all(&line),
            Target::Stderr => std::io::stderr().lock().write_all(&line),
        };
    }

    /// The fields `tracing`'s JSON lines have (`timestamp`, `level`, `message`), then the invocation's own.
    fn write_log_members(&self, out: &mut Vec<u8>, now: SystemTime) {
        let message: &[u8] = if self.http.is_some() { b"http" } else { b"invocation" };
        out.extend_from_slice(br#""timestamp":""#);
        write_rfc3339_micros(out, now);
        out.extend_from_slice(br#"","level":""#);
        out.extend_from_slice(self.level.as_str().as_bytes());
        out.extend_from_slice(br#"","message":""#);
        out.extend_from_slice(message);
        out.extend_from_slice(br#"","request_id":"#);
        write_json(out, self.sample.request_id);
        if let Some(trace) = self.xray_trace_id {
            out.extend_from_slice(br#","xray_trace_id":"#);
            write_json(out, trace);
        }
        if let Some(http) = &self.http {
            out.extend_from_slice(br#","gateway":"#);
            write_json(out, http.gateway);
            if let Some(by) = http.authorised_by {
                out.extend_from_slice(br#","authorised_by":"#);
                write_json(out, by);
            }
            out.extend_from_slice(br#","status":"#);
            write_json(out, &http.status);
        }
        out.extend_from_slice(br#","action":"#);
        write_json(out, self.action);
        out.extend_from_slice(br#","err_code":"#);
        write_json(out, &self.sample.err_code);
        if let Some(error_type) = self.error_type {
            out.extend_from_slice(br#","error_type":"#);
            write_json(out, error_type);
        }
        out.extend_from_slice(br#","latency_ms":"#);
        write_json(out, &to_the_microsecond(self.sample.latency_ms));
        if let Some(err_msg) = self.err_msg {
            out.extend_from_slice(br#","err_msg":"#);
            write_json(out, err_msg);
        }
        if let Some(authorizer) = self.authorizer {
            out.extend_from_slice(br#","authorizer":"#);
            write_json(out, authorizer);
        }
        if let Some(rollout) = self.rollout {
            out.extend_from_slice(br#","rollout_id":"#);
            write_json(out, &rollout.id);
            out.extend_from_slice(br#","rollout_state":"#);
            write_json(out, rollout.state);
        }
    }
}

/// `2026-12-01T14:21:56.123456Z`, as `tracing`'s lines have it. The part up to the second is formatted once a
/// second and kept: a record is written on every invocation, and the formatting machinery is its dearest part.
fn write_rfc3339_micros(out: &mut Vec<u8>, now: SystemTime) {
    static SECOND: Mutex<(u64, [u8; 19])> = Mutex::new((u64::MAX, [0; 19]));
    let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let mut second = SECOND.lock().unwrap_or_else(PoisonError::into_inner);
    if second.0 != seconds {
        let whole = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        let text = humantime::format_rfc3339_seconds(whole).to_string(); // YYYY-MM-DDTHH:MM:SSZ
        if let Some(prefix) = text.as_bytes().get(..19) {
            second.1.copy_from_slice(prefix);
            second.0 = seconds;
        }
    }
    out.extend_from_slice(&second.1);
    drop(second);
    let micros = since_epoch.subsec_micros();
    let digits = [100_000, 10_000, 1_000, 100, 10, 1].map(|unit| b'0' + (micros / unit % 10) as u8);
    out.push(b'.');
    out.extend_from_slice(&digits);
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_with_microseconds() {
        for (since_epoch, expected) in [
            (std::time::Duration::new(1_796_136_206, 51_411_999), "2026-12-01T14:43:26.051411Z"),
            (std::time::Duration::new(1_796_136_207, 7_000), "2026-12-01T14:43:27.000007Z"),
            (std::time::Duration::new(0, 999_999_000), "1970-01-01T00:00:00.999999Z"),
        ] {
            let mut out = Vec::new();
            write_rfc3339_micros(&mut out, SystemTime::UNIX_EPOCH + since_epoch);
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    /// The record's line as JSON text, log fields and metrics both.
    fn line_of(record: &Record) -> String {
        let mut line = b"{".to_vec();
        record.write_log_members(&mut line, SystemTime::UNIX_EPOCH);
        line.push(b',');
        record.sample.write_members(&mut line, 0);
        line.push(b'}');
        String::from_utf8(line).unwrap()
    }

    #[test]
    fn latency_is_printed_to_the_microsecond_without_float_noise() {
        let usage = super::super::metrics::Usage::default();
        let record = |latency_ms: f64| Record {
            sample: Sample { dimension: "list", err_code: 0, latency_ms, usage, request_id: "rid", rollout_id: None },
            level: Level::INFO,
            action: "list",
            error_type: None,
            err_msg: None,
            authorizer: None,
            rollout: None,
            xray_trace_id: None,
            http: None,
        };
        // 73.4 µs, as a clock reading turns into milliseconds: the double nearest to it prints with 16 digits.
        let noisy = std::time::Duration::from_nanos(73_400).as_secs_f64() * 1000.0;
        assert_eq!(noisy.to_string(), "0.07339999999999999", "the noise this test is about");
        let line = line_of(&record(noisy));
        assert!(line.contains(r#""latency_ms":0.073,"#) && line.contains(r#""Latency":0.073,"#), "{line}");
        // Any reading, however it falls: at most three decimals, within half a microsecond of the reading.
        for nanos in (0..2_000_000u64).step_by(7_919).chain([1_234_567_891, 999_999_999_999]) {
            let latency_ms = std::time::Duration::from_nanos(nanos).as_secs_f64() * 1000.0;
            let line: serde_json::Value = serde_json::from_str(&line_of(&record(latency_ms))).unwrap();
            for field in ["latency_ms", "Latency"] {
                let printed = line[field].to_string();
                let decimals = printed.split_once('.').map_or(0, |(_, fraction)| fraction.len());
                assert!(decimals <= 3, "{field} {printed} for {nanos} ns");
                assert!((line[field].as_f64().unwrap() - latency_ms).abs() <= 0.0005, "{field} {printed}");
            }
        }
    }

    #[test]
    fn lambdas_log_levels_map_onto_tracings() {
        let levels = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "warn", "loud"].map(lambda_level);
        let expected =
            [LevelFilter::TRACE, LevelFilter::DEBUG, LevelFilter::INFO, LevelFilter::WARN, LevelFilter::ERROR];
        assert_eq!(levels[..5], expected.map(Some));
        assert_eq!((levels[5], levels[6], levels[7]), (Some(LevelFilter::ERROR), Some(LevelFilter::WARN), None));
    }

    #[test]
    fn rust_log_wins_over_lambdas_level_but_never_opens_the_http_crates() {
        let level = |f: &Targets, target: &str| {
            let mut levels = [Level::TRACE, Level::DEBUG, Level::INFO, Level::WARN, Level::ERROR].into_iter();
            levels.find(|l| f.would_enable(target, l)).map(|l| l.to_string())
        };
        let asked = filter(Some("debug,wx_plugin_manager::token=trace,reqwest=trace"), Some(LevelFilter::ERROR));
        assert_eq!(level(&asked, "wx_plugin_manager::gateway").as_deref(), Some("DEBUG"));
        assert_eq!(level(&asked, "wx_plugin_manager::token::redis").as_deref(), Some("TRACE"));
        for quiet in ["reqwest::connect", "hyper_util::client", "h2", "rustls::client"] {
            assert_eq!(level(&asked, quiet).as_deref(), Some("WARN"), "{quiet}");
        }
        let lambda = filter(None, Some(LevelFilter::WARN));
        assert_eq!(level(&lambda, "wx_plugin_manager").as_deref(), Some("WARN"));
        let unreadable = filter(Some("wx_plugin_manager=loud"), None);
        assert_eq!(level(&unreadable, "wx_plugin_manager").as_deref(), Some("INFO"));
        assert_eq!(level(&filter(Some("off"), None), "wx_plugin_manager"), None);
    }
}
