//! Lambda specifics: the invocation loop over the Runtime API, deadlines, and a cold start that cannot serve.
//!
//! One worker polls, hands the raw payload to [`super::handle_payload`] and posts the answer; under
//! `AWS_LAMBDA_MAX_CONCURRENCY` > 1 (Lambda Managed Instances) that many workers share the container's [`App`].
//!
//! # Why not lambda_runtime
//!
//! Measured (`cargo bench --bench lambda`, BENCHMARKS.md): lambda_runtime's sequential loop stores each invocation's
//! trace id with `setenv("_X_AMZN_TRACE_ID", …)`, and glibc never frees a replaced value, so its bare proxy grows
//! about 120 B an invocation; both architectures' `sam build` artefacts are glibc. This loop never calls `setenv`
//! and stays flat. It also hands a payload that is not JSON to the handler (answered `InvalidEvent`, with its line)
//! and logs a failure once. What lambda_runtime offers, and what becomes of it here:
//!
//! | lambda_runtime | here |
//! |---|---|
//! | request id | kept: the answer's path and the line's `request_id` |
//! | deadline | kept: bounds every wait, less 250 ms for the answer |
//! | invoked function ARN | not needed (nothing depends on the version or alias); accepted, ignored |
//! | X-Ray trace id | kept as the line's `xray_trace_id` (the header's `Root`); never in the environment; no subsegments (missing) |
//! | client context | not needed (no plugin call depends on the calling app); accepted, not parsed |
//! | Cognito identity | not needed (IAM or the gateway authenticates); accepted, not parsed |
//! | tenant id | not needed (the mini program comes from the configuration or `authorizerAppid`); accepted, ignored |
//! | response streaming | not needed (small JSON answers); missing |
//! | Managed Instances concurrency | kept: `AWS_LAMBDA_MAX_CONCURRENCY` workers on one thread |
//! | init errors | kept: a `ConfigError` posted to `/init/error` |
//!
//! Any other header is accepted too: an invocation fails only without a request id or a deadline.

mod runtime_api;

use std::panic::AssertUnwindSafe;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use crate::app::App;
use crate::error::{sdk_codes::SYSTEM, Error};
use crate::observe::logging;
use crate::present;
use runtime_api::{ApiError, Connection, Endpoint, Invocation};

/// A broken poll is tried again this many times (a moment apart) before the process gives up and Lambda starts
/// another.
const POLL_ATTEMPTS: u32 = 3;
const POLL_PAUSE: Duration = Duration::from_millis(100);

/// The Lambda binary's whole life: logging, the cold start, then invocations until the Runtime API goes away.
pub async fn run() -> ExitCode {
    logging::init(logging::Target::Stdout);
    let endpoint = match Endpoint::from_env() {
        Ok(endpoint) => endpoint,
        Err(e) => {
            tracing::error!(error = %e, "cold start failed");
            return ExitCode::FAILURE;
        }
    };
    let app = match App::from_env().await {
        Ok(app) => Arc::new(app),
        Err(e) => {
            init_failed(&endpoint, &e).await;
            return ExitCode::FAILURE;
        }
    };
    match serve(app, endpoint).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the Runtime API failed; exiting so that Lambda starts a fresh process");
            ExitCode::FAILURE
        }
    }
}

/// Serves invocations with one worker, or `AWS_LAMBDA_MAX_CONCURRENCY` of them.
async fn serve(app: Arc<App>, endpoint: Endpoint) -> Result<(), ApiError> {
    let workers = match std::env::var("AWS_LAMBDA_MAX_CONCURRENCY") {
        Err(_) => 1,
        Ok(value) => value.trim().parse::<u16>().unwrap_or_else(|_| {
            tracing::warn!(value = %value, "AWS_LAMBDA_MAX_CONCURRENCY is not a number from 0 to 65535; serving one at a time");
            1
        }),
    };
    if workers <= 1 {
        return work(&app, endpoint).await;
    }
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (app, endpoint) = (app.clone(), endpoint.clone());
        running.spawn(async move { work(&app, endpoint).await });
    }
    // A worker that stops leaves the others serving; the process ends with the last one.
    let mut last = Ok(());
    while let Some(ended) = running.join_next().await {
        last = ended.unwrap_or_else(|e| Err(ApiError::Exchange(format!("a worker stopped: {e}"))));
        if let Err(e) = &last {
            tracing::error!(error = %e, workers_left = running.len(), "a worker stopped");
        }
    }
    last
}

async fn work(app: &App, endpoint: Endpoint) -> Result<(), ApiError> {
    let mut api = Connection::new(endpoint);
    loop {
        let invocation = next(&mut api).await?;
        let deadline = deadline_from_epoch_ms(invocation.deadline_ms);
        tracing::debug!(request_id = %invocation.request_id, bytes = invocation.payload.len(), "invocation received");
        let handled = super::handle_payload(app, &invocation.payload, deadline, invocation.ids());
        // A panic answers its invocation with an error instead of taking the other workers down with it.
        let outcome = AssertUnwindSafe(handled).catch_unwind().await.ok();
        match answer(&mut api, &invocation, outcome).await {
            Ok(()) => tracing::trace!(request_id = %invocation.request_id, "answer posted"),
            Err(e) => {
                tracing::error!(request_id = %invocation.request_id, error = %e, "the answer could not be posted")
            }
        }
    }
}

async fn next(api: &mut Connection) -> Result<Invocation, ApiError> {
    let mut attempt = 1;
    loop {
        match api.next().await {
            Err(e @ (ApiError::Connect { .. } | ApiError::Exchange(_))) if attempt < POLL_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "polling the Runtime API failed; polling again");
                attempt += 1;
                tokio::time::sleep(POLL_PAUSE).await;
            }
            other => return other,
        }
    }
}

/// Posts the result, the error, or (`None`: the handler panicked) an internal error that says nothing more.
async fn answer(
    api: &mut Connection,
    invocation: &Invocation,
    outcome: Option<Result<serde_json::Value, Error>>,
) -> Result<(), ApiError> {
    match outcome.map(|outcome| outcome.map(|result| serde_json::to_vec(&result))) {
        Some(Ok(Ok(body))) => api.respond(invocation, body).await,
        Some(Err(error)) => api.fail(invocation, error.kind(), error.to_lambda_json().to_string().into_bytes()).await,
        // Serialising a `Value` cannot fail (its keys are strings); were it to, the invocation still gets an answer.
        Some(Ok(Err(_))) | None => {
            tracing::error!(request_id = %invocation.request_id, "the invocation panicked or its result was not JSON");
            let thrown =
                present::thrown(SYSTEM, present::fail_message(present::NO_METHOD, format_args!("internal error")));
            let body = present::lambda_error(PANIC, &thrown);
            api.fail(invocation, PANIC, body.to_string().into_bytes()).await
        }
    }
}

/// The `errorType` of an invocation whose handler panicked (a bug of ours: it is logged as an error).
const PANIC: &str = "InternalError";

/// Deadlines below this (2001-09-09 in unix ms) are not points in time but a budget: `cargo lambda watch` sends the
/// function's timeout (e.g. 600000) where Lambda sends the epoch deadline.
const EPOCH_DEADLINE_FLOOR_MS: u64 = 1_000_000_000_000;

/// The `Instant` of a Lambda deadline given in unix milliseconds.
pub(crate) fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let left_ms = if deadline_ms < EPOCH_DEADLINE_FLOOR_MS {
        deadline_ms
    } else {
        deadline_ms.saturating_sub(crate::clock::now_ms())
    };
    Instant::now() + Duration::from_millis(left_ms)
}

/// A cold start that cannot serve: says why in the log and to the Runtime API (so that Lambda's init error carries
/// the kind and the message).
async fn init_failed(endpoint: &Endpoint, error: &Error) {
    tracing::error!(error_type = error.kind(), err_code = error.err_code(), err_msg = %error, "cold start failed");
    let body = error.to_lambda_json().to_string().into_bytes();
    if let Err(e) = Connection::new(endpoint.clone()).init_error(error.kind(), body).await {
        tracing::error!(error = %e, "could not report the init error to the Runtime API");
    }
}
