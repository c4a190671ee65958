//! JSON logs, one object a line. Whatever `RUST_LOG` asks, the HTTP crates stay at `warn` (reqwest logs request URLs
//! at `debug`, and ours carry `access_token` and, on the classic endpoint, the secret), and lambda_runtime at `debug`.

use tracing_subscriber::EnvFilter;

/// lambda_runtime logs each raw event at `trace`, and a gateway's event carries the `Authorization` header.
const QUIET_HTTP: [&str; 6] =
    ["reqwest=warn", "hyper=warn", "hyper_util=warn", "h2=warn", "rustls=warn", "lambda_runtime=debug"];

/// Where log lines go: Lambda reads stdout; `wxpm` keeps stdout for the result.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Stdout,
    Stderr,
}

static TARGET: std::sync::OnceLock<Target> = std::sync::OnceLock::new();

/// Writes one whole line (a metrics record) where the logs go.
pub fn write_line(mut line: String) {
    use std::io::Write;
    // One write of the whole line, so concurrent invocations' lines never interleave.
    line.push('\n');
    let buffer = line;
    let _ = match TARGET.get().copied().unwrap_or(Target::Stdout) {
        Target::Stdout => std::io::stdout().lock().write_all(buffer.as_bytes()),
        Target::Stderr => std::io::stderr().lock().write_all(buffer.as_bytes()),
    };
}

pub fn init(target: Target) {
    let _ = TARGET.set(target);
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for directive in QUIET_HTTP {
        filter = filter.add_directive(directive.parse().expect("static log directive"));
    }
    let builder = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .flatten_event(true);
    // A second init (tests) keeps the first subscriber.
    let _ = match target {
        Target::Stdout => builder.with_writer(std::io::stdout).try_init(),
        Target::Stderr => builder.with_writer(std::io::stderr).try_init(),
    };
}
