//! How a rollout looks to its operator: the progress line while following it, the status table, the report's CSV.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::Value;

/// The report's columns, as the function names the fields.
pub const CSV_HEADER: [&str; 6] = ["authorizerAppid", "state", "errCode", "errMsg", "attempts", "updated"];
/// The states in the order the table lists them: settled first, as the progress line counts them.
const STATES: [&str; 6] = ["done", "failed", "quota", "pending", "running", "retrying"];

/// A status answer's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub targets: u64,
    /// By [`STATES`].
    pub states: [u64; 6],
}

impl Counts {
    pub fn of(status: &Value) -> Counts {
        Counts {
            targets: status["targets"].as_u64().unwrap_or_default(),
            states: STATES.map(|state| status["states"][state].as_u64().unwrap_or_default()),
        }
    }

    /// Done, failed or quota: nothing more will happen to them (until a later day's start, for quota).
    pub fn settled(&self) -> u64 {
        self.states[..3].iter().sum()
    }

    /// Pending, running or retrying.
    pub fn unsettled(&self) -> u64 {
        self.states[3..].iter().sum()
    }
}

/// The progress line on stderr: redrawn in place on a terminal, a line per poll elsewhere (a log keeps each).
pub struct Progress {
    terminal: bool,
    started: Instant,
    /// The first poll's settled count and time: the rate of settling is measured from there.
    first: Option<(u64, Instant)>,
    drawn: bool,
}

impl Progress {
    pub fn new(terminal: bool) -> Progress {
        Progress { terminal, started: Instant::now(), first: None, drawn: false }
    }

    pub fn draw(&mut self, counts: &Counts) {
        let now = Instant::now();
        let first = *self.first.get_or_insert((counts.settled(), now));
        let mut line = progress_line(counts, now - self.started, left(counts, first, now));
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            // A line that wraps cannot be redrawn by \r: cut to the width (what matters most comes first).
            line.truncate(terminal_columns().unwrap_or(80).saturating_sub(1));
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        self.drawn = self.terminal;
    }

    /// A message between two draws, on a line of its own.
    pub fn note(&mut self, message: &str) {
        self.end();
        eprintln!("{message}");
    }

    /// Ends the line drawn in place, so that what follows starts on its own.
    pub fn end(&mut self) {
        if std::mem::take(&mut self.drawn) {
            eprintln!();
        }
    }
}

/// The time left at the rate targets have settled since the first poll; `None` before any has.
fn left(counts: &Counts, (settled_first, at): (u64, Instant), now: Instant) -> Option<Duration> {
    let settled = counts.settled().checked_sub(settled_first).filter(|&n| n > 0)?;
    let per_target = (now - at).as_secs_f64() / settled as f64;
    Duration::try_from_secs_f64(per_target * counts.unsettled() as f64).ok()
}

pub fn progress_line(counts: &Counts, elapsed: Duration, left: Option<Duration>) -> String {
    const WIDTH: u64 = 20;
    let [done, failed, quota, pending, running, retrying] = counts.states;
    let (settled, targets) = (counts.settled(), counts.targets.max(1));
    let filled = (settled * WIDTH / targets) as usize;
    let bar = format!("{}{}", "#".repeat(filled), ".".repeat(WIDTH as usize - filled.min(WIDTH as usize)));
    let left = match (counts.unsettled(), left) {
        (0, _) => String::new(),
        (_, Some(left)) => format!(", ~{} left", duration(left.max(Duration::from_secs(1)))),
        (_, None) => ", time left unknown yet".into(),
    };
    format!(
        "[{bar}] {:>3}% {settled}/{} settled | {}{left} | done {done} failed {failed} quota {quota} | pending \
         {pending} running {running} retrying {retrying}",
        settled * 100 / targets,
        counts.targets,
        duration(elapsed),
    )
}

/// The terminal's width, from the terminal itself (COLUMNS is seldom exported).
#[cfg(unix)]
fn terminal_columns() -> Option<usize> {
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct it is given, which lives across the call.
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

#[cfg(not(unix))]
fn terminal_columns() -> Option<usize> {
    None
}

/// `45s`, `3m05s`, `2h07m`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// The status answer as a table: by state, then by errCode.
pub fn table(id: &str, status: &Value) -> String {
    let counts = Counts::of(status);
    let time = |field: &str| {
        let ms = status[field].as_u64().unwrap_or_default();
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "rollout {id}: {} targets, created {}, updated {}",
        counts.targets,
        time("created"),
        time("updated")
    );
    let _ = writeln!(out, "event {}", status["event"]);
    let _ = writeln!(out, "\n{:<10} {:>8}", "state", "count");
    for (state, count) in STATES.iter().zip(counts.states) {
        let _ = writeln!(out, "{state:<10} {count:>8}");
    }
    let codes = status["errCodes"].as_object().filter(|codes| !codes.is_empty());
    if let Some(codes) = codes {
        let _ = writeln!(out, "\n{:<10} {:>8}", "errCode", "count");
        // The commonest first: what most of the failures were.
        let mut codes: Vec<(&String, u64)> =
            codes.iter().map(|(code, n)| (code, n.as_u64().unwrap_or_default())).collect();
        codes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        for (code, count) in codes {
            let _ = writeln!(out, "{code:<10} {count:>8}");
        }
    }
    let settled = counts.settled() * 100 / counts.targets.max(1);
    let _ = writeln!(out, "\n{}/{} settled ({settled}%)", counts.settled(), counts.targets);
    out
}

/// One report target as a CSV line (RFC 4180), in [`CSV_HEADER`]'s order.
pub fn csv_row(target: &Value) -> String {
    let fields: Vec<String> = CSV_HEADER
        .iter()
        .map(|name| match &target[*name] {
            Value::Null => String::new(),
            Value::String(text) => csv_field(text),
            other => csv_field(&other.to_string()),
        })
        .collect();
    fields.join(",")
}

/// Quoted when it holds a comma, a quote or a line break; quotes doubled. WeChat's errMsg has all three.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn csv_quotes_commas_quotes_and_line_breaks() {
        let target = json!({
            "authorizerAppid": "wx0000000000000001", "state": "failed", "errCode": 89237,
            "errMsg": "openapi.pluginManager.update:fail plugin \"x\" not found, hint: [a]\nnext line",
            "attempts": 2, "updated": 1_700_000_000_000u64,
        });
        assert_eq!(
            csv_row(&target),
            "wx0000000000000001,failed,89237,\
             \"openapi.pluginManager.update:fail plugin \"\"x\"\" not found, hint: [a]\nnext line\",2,1700000000000"
        );
        let pending = json!({ "authorizerAppid": "wx2", "state": "pending", "errCode": 0, "errMsg": "",
                              "attempts": 0, "updated": null });
        assert_eq!(csv_row(&pending), "wx2,pending,0,,0,");
        assert_eq!(csv_field("a\rb"), "\"a\rb\"");
        assert_eq!(csv_field("plain text"), "plain text");
    }

    #[test]
    fn the_progress_line_counts_settled_and_estimates_from_the_rate() {
        let status = json!({ "targets": 200, "states": { "pending": 50, "running": 10, "retrying": 20, "done": 100,
                                                         "failed": 15, "quota": 5 } });
        let counts = Counts::of(&status);
        assert_eq!((counts.settled(), counts.unsettled()), (120, 80));
        // 120 settled in 60 s since the first poll (which saw none): 80 more take 40 s.
        let now = Instant::now();
        let first = (0, now - Duration::from_secs(60));
        let estimate = left(&counts, first, now).unwrap();
        assert!((39..=41).contains(&estimate.as_secs()), "{estimate:?}");
        let line = progress_line(&counts, Duration::from_secs(65), Some(estimate));
        assert!(line.starts_with("[############........]  60% 120/200 settled | 1m05s, ~4"), "{line}");
        assert!(line.ends_with("s left | done 100 failed 15 quota 5 | pending 50 running 10 retrying 20"), "{line}");
        assert!(left(&counts, (120, now - Duration::from_secs(5)), now).is_none(), "nothing settled since");
        assert!(progress_line(&counts, Duration::ZERO, None).contains(" | 0s, time left unknown yet | "));
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(Duration::from_secs(45)), "45s");
        assert_eq!(duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(duration(Duration::from_secs(7620)), "2h07m");
    }

    #[test]
    fn the_table_lists_states_then_error_codes() {
        let status = json!({ "rolloutId": "r1", "event": { "action": "update" }, "targets": 3,
            "states": { "pending": 0, "running": 0, "retrying": 0, "done": 1, "failed": 2, "quota": 0 },
            "errCodes": { "89237": 2 }, "created": 1_699_999_000_000u64, "updated": 1_700_000_000_000u64 });
        let table = table("r1", &status);
        assert!(table.contains("updated 2023-11-14T22:13:20Z"), "{table}");
        assert!(table.contains("\nfailed            2\n"), "{table}");
        assert!(table.contains("\nerrCode       count\n89237             2\n"), "{table}");
        assert!(table.ends_with("\n3/3 settled (100%)\n"), "{table}");
    }
}
