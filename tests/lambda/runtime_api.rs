//! The local Lambda Runtime API, driven by a hand-written client in place of the Lambda binary.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::runtime_api::{Outcome, RuntimeApi, FUNCTION_ARN, GRACE};
use reqwest::{header::HeaderMap, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Barrier;

const SECS_5: Duration = Duration::from_secs(5);

/// Runs a fake function on its own thread and tokio runtime, as the Lambda process would.
fn function<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> JoinHandle<T> {
    thread::spawn(move || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f))
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(20)).build().unwrap()
}

/// Polls `/next`: the request id, all headers, and the event.
async fn next(http: &reqwest::Client, endpoint: &str) -> (String, HeaderMap, Vec<u8>) {
    let response = http.get(format!("http://{endpoint}/2018-06-01/runtime/invocation/next")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let id = headers["lambda-runtime-aws-request-id"].to_str().unwrap().to_owned();
    (id, headers, response.bytes().await.unwrap().to_vec())
}

async fn post(http: &reqwest::Client, endpoint: &str, path: &str, body: Value) -> StatusCode {
    let request = http.post(format!("http://{endpoint}/2018-06-01/runtime/{path}")).body(body.to_string());
    request.header("lambda-runtime-function-error-type", "unhandled").send().await.unwrap().status()
}

/// Answers one invocation with `{"echo": event, "id": request id}`, once all holders of `all_received` have one;
/// gives the `/next` headers and the status of the answer.
async fn echo_once(endpoint: String, all_received: Option<Arc<Barrier>>) -> (HeaderMap, StatusCode) {
    let http = http();
    let (id, headers, event) = next(&http, &endpoint).await;
    if let Some(all_received) = all_received {
        tokio::time::timeout(SECS_5, all_received.wait()).await.expect("invocations were handed out one at a time");
    }
    let response = json!({"echo": serde_json::from_slice::<Value>(&event).unwrap(), "id": id});
    (headers, post(&http, &endpoint, &format!("invocation/{id}/response"), response).await)
}

#[test]
fn next_long_polls_then_delivers_the_event_with_lambda_headers_and_the_response_reaches_invoke() {
    let epoch_ms = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis();
    let api = RuntimeApi::start();
    let fake = function(echo_once(api.endpoint(), None));
    assert!(api.wait_for_polls(1, SECS_5));
    assert!(!fake.is_finished(), "/next must block while nothing is queued");

    let before = epoch_ms();
    let response = api.invoke(&json!({"hello": "world"}), Duration::from_secs(3)).response();
    let after = epoch_ms();
    assert_eq!(response["echo"], json!({"hello": "world"}));

    let (headers, status) = fake.join().unwrap();
    assert_eq!(headers["lambda-runtime-aws-request-id"], response["id"].as_str().unwrap());
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["lambda-runtime-invoked-function-arn"], FUNCTION_ARN);
    assert!(headers["lambda-runtime-trace-id"].to_str().unwrap().starts_with("Root=1-"));
    let deadline: u128 = headers["lambda-runtime-deadline-ms"].to_str().unwrap().parse().unwrap();
    assert!((before + 3000..=after + 3000).contains(&deadline), "deadline {deadline} is not now + 3 s ({before})");
    assert_eq!(api.polls(), 1);
}

#[test]
fn a_posted_error_is_the_outcome_and_raw_events_arrive_byte_for_byte() {
    let api = RuntimeApi::start();
    let endpoint = api.endpoint();
    let fake = function(async move {
        let http = http();
        let (id, _, event) = next(&http, &endpoint).await;
        let diagnostic = json!({"errorType": "Runtime.Unmarshal", "errorMessage": format!("{event:?}")});
        post(&http, &endpoint, &format!("invocation/{id}/error"), diagnostic).await
    });
    let (error_type, error_message) = api.invoke_raw(b"not json \xff", SECS_5).error();
    assert_eq!(error_type, "Runtime.Unmarshal");
    assert_eq!(error_message, format!("{:?}", b"not json \xff".to_vec()));
    assert_eq!(fake.join().unwrap(), StatusCode::ACCEPTED);
}

#[test]
fn concurrent_pollers_each_hold_a_distinct_invocation_at_the_same_time() {
    const WORKERS: usize = 4;
    let api = RuntimeApi::start();
    let endpoint = api.endpoint();
    let fake = function(async move {
        let all_received = Arc::new(Barrier::new(WORKERS));
        let workers: Vec<_> =
            (0..WORKERS).map(|_| tokio::spawn(echo_once(endpoint.clone(), Some(all_received.clone())))).collect();
        for worker in workers {
            assert_eq!(worker.await.unwrap().1, StatusCode::ACCEPTED);
        }
    });
    assert!(api.wait_for_polls(WORKERS, SECS_5));

    let events: Vec<Value> = (0..WORKERS).map(|i| json!({"n": i})).collect();
    let outcomes = api.invoke_many(&events, SECS_5);
    let mut ids = HashSet::new();
    for (event, outcome) in events.iter().zip(outcomes) {
        let response = outcome.response();
        assert_eq!(&response["echo"], event, "outcomes come back in the order of the events");
        ids.insert(response["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), WORKERS, "request ids are unique");
    fake.join().unwrap();
}

#[test]
fn an_unanswered_invocation_is_no_answer_after_timeout_plus_grace_and_is_never_delivered_later() {
    let api = RuntimeApi::start();
    let timeout = Duration::from_millis(100);
    let started = Instant::now();
    assert_eq!(api.invoke(&json!("stale"), timeout), Outcome::NoAnswer);
    let waited = started.elapsed();
    assert!(waited >= timeout + GRACE && waited < timeout + GRACE + Duration::from_secs(2), "waited {waited:?}");

    let fake = function(echo_once(api.endpoint(), None));
    assert_eq!(api.invoke(&json!("fresh"), SECS_5).response()["echo"], "fresh");
    fake.join().unwrap();
}

#[test]
fn a_poll_abandoned_by_a_vanished_client_does_not_swallow_the_next_invocation() {
    let api = RuntimeApi::start();
    let endpoint = api.endpoint();
    let gave_up = function(async move {
        let impatient = reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(200)).build().unwrap();
        let next = format!("http://{endpoint}/2018-06-01/runtime/invocation/next");
        impatient.get(next).send().await.unwrap_err().is_timeout()
    });
    assert!(gave_up.join().unwrap(), "the abandoned poll must have been pending");

    let fake = function(echo_once(api.endpoint(), None));
    assert!(api.wait_for_polls(2, SECS_5));
    assert_eq!(api.invoke(&json!(1), Duration::from_secs(2)).response()["echo"], 1);
    fake.join().unwrap();
}

#[test]
fn init_errors_are_recorded_and_answers_for_unknown_request_ids_are_rejected() {
    let api = RuntimeApi::start();
    assert_eq!(api.init_error(), None);
    let endpoint = api.endpoint();
    let statuses = function(async move {
        let http = http();
        let diagnostic = json!({"errorType": "Runtime.InitError", "errorMessage": "no credentials"});
        let init = post(&http, &endpoint, "init/error", diagnostic).await;
        (init, post(&http, &endpoint, "invocation/nobody/response", json!({})).await)
    });
    assert_eq!(statuses.join().unwrap(), (StatusCode::ACCEPTED, StatusCode::BAD_REQUEST));
    assert_eq!(api.init_error().unwrap()["errorMessage"], "no credentials");
    assert_eq!(api.polls(), 0);
}
