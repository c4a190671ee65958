//! A local AWS Lambda Runtime API (`/2018-06-01/runtime/...`) on loopback, for driving the real Lambda binary.
//!
//! It runs on its own thread and tokio runtime, so plain `#[test]`s can use it; every wait is bounded.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::{mpsc as queue, oneshot};

/// How long past an invocation's timeout `invoke` keeps waiting for the answer before giving `NoAnswer`.
pub const GRACE: Duration = Duration::from_secs(5);
/// The `Lambda-Runtime-Invoked-Function-Arn` of every invocation.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:wx-plugin-manager";

/// What the function posted for one invocation.
/// `Response`: the body (a JSON string if it was not JSON); `Error`: its `errorType`, `errorMessage`;
/// `NoAnswer`: nothing was posted within timeout + [`GRACE`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error { error_type: String, error_message: String },
    NoAnswer,
}

impl Outcome {
    #[track_caller]
    pub fn response(self) -> Value {
        let Outcome::Response(value) = self else { panic!("expected a response, got {self:?}") };
        value
    }

    #[track_caller]
    pub fn error(self) -> (String, String) {
        let Outcome::Error { error_type, error_message } = self else { panic!("expected an error, got {self:?}") };
        (error_type, error_message)
    }
}

/// An invocation's request id and its `/next` response.
type Queued = (String, Response<Full<Bytes>>);

struct Shared {
    queue_tx: queue::UnboundedSender<Queued>,
    queue_rx: tokio::sync::Mutex<queue::UnboundedReceiver<Queued>>,
    /// Invocations still awaiting an answer; an entry is removed by the answer or by `invoke` giving up.
    waiting: Mutex<HashMap<String, mpsc::Sender<Outcome>>>,
    polls: Mutex<usize>,
    polled: Condvar,
    init_error: Mutex<Option<Value>>,
}

pub struct RuntimeApi {
    shared: Arc<Shared>,
    endpoint: String,
    next_id: AtomicU64,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Which of Lambda's invocation headers `/next` sends.
    headers: Headers,
}

/// The invocation headers `/next` sends besides the request id, the deadline and the function ARN.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Headers {
    /// A fresh `Lambda-Runtime-Trace-Id` per invocation, as every Lambda invocation has.
    Traced,
    /// Everything Lambda may send: the trace id, the invocation id, a mobile client's context, a Cognito identity
    /// and a tenant id.
    Every,
}

impl RuntimeApi {
    pub fn start() -> RuntimeApi {
        RuntimeApi::start_with(Headers::Traced)
    }

    /// Invocations carrying every header Lambda sends today, including those only some invocations have
    /// (`Lambda-Runtime-Client-Context`, `Lambda-Runtime-Cognito-Identity`, `Lambda-Runtime-Aws-Tenant-Id`).
    pub fn start_sending_every_header() -> RuntimeApi {
        RuntimeApi::start_with(Headers::Every)
    }

    fn start_with(headers: Headers) -> RuntimeApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the runtime API");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let endpoint = listener.local_addr().expect("local address").to_string();
        let (queue_tx, queue_rx) = queue::unbounded_channel();
        let shared = Arc::new(Shared {
            queue_tx,
            queue_rx: tokio::sync::Mutex::new(queue_rx),
            waiting: Mutex::default(),
            polls: Mutex::new(0),
            polled: Condvar::new(),
            init_error: Mutex::default(),
        });
        let (stop, stopped) = oneshot::channel();
        let server = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
            rt.spawn(serve(listener, server));
            let _ = rt.block_on(stopped); // then dropping the runtime drops every connection
        });
        RuntimeApi { shared, endpoint, next_id: AtomicU64::new(0), stop: Some(stop), thread: Some(thread), headers }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    pub fn invoke(&self, event: &Value, timeout: Duration) -> Outcome {
        self.invoke_raw(&serde_json::to_vec(event).expect("serialise the event"), timeout)
    }

    pub fn invoke_raw(&self, body: &[u8], timeout: Duration) -> Outcome {
        let ticket = self.enqueue(body.to_vec(), timeout);
        self.answer_of(ticket, Instant::now() + timeout + GRACE)
    }

    /// As [`invoke`](Self::invoke), but gives up at once, with `NoAnswer`, when `gone()` holds (asked every 20 ms):
    /// Lambda fails an invocation when its instance dies or is reset, without waiting for the deadline.
    pub fn invoke_unless(&self, event: &Value, timeout: Duration, mut gone: impl FnMut() -> bool) -> Outcome {
        let (id, rx) = self.enqueue(serde_json::to_vec(event).expect("serialise the event"), timeout);
        let until = Instant::now() + timeout + GRACE;
        loop {
            let slice = until.saturating_duration_since(Instant::now()).min(Duration::from_millis(20));
            match rx.recv_timeout(slice) {
                Ok(outcome) => return outcome,
                Err(_) if Instant::now() >= until || gone() => return self.answer_of((id, rx), Instant::now()),
                Err(_) => {}
            }
        }
    }

    /// Queues every event at once, then waits for all answers; outcomes are in the order of `events`.
    pub fn invoke_many(&self, events: &[Value], timeout: Duration) -> Vec<Outcome> {
        let tickets: Vec<_> =
            events.iter().map(|e| self.enqueue(serde_json::to_vec(e).expect("serialise"), timeout)).collect();
        let until = Instant::now() + timeout + GRACE;
        tickets.into_iter().map(|ticket| self.answer_of(ticket, until)).collect()
    }

    pub fn init_error(&self) -> Option<Value> {
        self.shared.init_error.lock().unwrap().clone()
    }

    /// `GET /next` requests received so far.
    pub fn polls(&self) -> usize {
        *self.shared.polls.lock().unwrap()
    }

    /// Waits until at least `n` polls have been received; false on timeout.
    pub fn wait_for_polls(&self, n: usize, timeout: Duration) -> bool {
        let polls = self.shared.polls.lock().unwrap();
        let (_polls, waited) = self.shared.polled.wait_timeout_while(polls, timeout, |p| *p < n).unwrap();
        !waited.timed_out()
    }

    fn enqueue(&self, body: Vec<u8>, timeout: Duration) -> (String, mpsc::Receiver<Outcome>) {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("5eb1a7e0-0000-4000-8000-{n:012x}");
        let (tx, rx) = mpsc::channel();
        self.shared.waiting.lock().unwrap().insert(id.clone(), tx);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let mut next = Response::builder()
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("lambda-runtime-aws-request-id", &id)
            .header("lambda-runtime-deadline-ms", (now + timeout).as_millis().to_string())
            .header("lambda-runtime-invoked-function-arn", FUNCTION_ARN);
        let trace = xray_trace_id(now, n);
        match self.headers {
            Headers::Traced => next = next.header("lambda-runtime-trace-id", format!("Root={trace};Sampled=0")),
            Headers::Every => {
                let client_context = json!({
                    "client": {"installation_id": "i-1", "app_title": "demo", "app_version_name": "1.0",
                               "app_version_code": "1", "app_package_name": "com.example.demo"},
                    "custom": {"tenant": "demo"},
                    "env": {"platform": "Android"},
                });
                let cognito = json!({"cognitoIdentityId": "us-east-1:1234", "cognitoIdentityPoolId": "us-east-1:pool"});
                next = next
                    .header(
                        "lambda-runtime-trace-id",
                        format!("Root={trace};Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0"),
                    )
                    .header("lambda-runtime-invocation-id", format!("inv-{n}"))
                    .header("lambda-runtime-client-context", client_context.to_string())
                    .header("lambda-runtime-cognito-identity", cognito.to_string())
                    .header("lambda-runtime-aws-tenant-id", "tenant-blue")
                    .header("lambda-runtime-future-header", "anything");
            }
        }
        let next = next.body(Full::new(Bytes::from(body))).unwrap();
        self.shared.queue_tx.send((id.clone(), next)).expect("the runtime API has stopped");
        (id, rx)
    }

    fn answer_of(&self, (id, rx): (String, mpsc::Receiver<Outcome>), until: Instant) -> Outcome {
        rx.recv_timeout(until.saturating_duration_since(Instant::now())).unwrap_or_else(|_| {
            // Withdraw it, so a late answer is rejected and a late poll never receives it.
            self.shared.waiting.lock().unwrap().remove(&id);
            rx.try_recv().unwrap_or(Outcome::NoAnswer)
        })
    }
}

/// The X-Ray trace id of the `n`th invocation: `1-<epoch seconds in hex>-<24 hex digits>`, unique per invocation.
pub fn xray_trace_id(now: Duration, n: u64) -> String {
    format!("1-{:08x}-{n:024x}", now.as_secs())
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        if let (Some(stop), Some(thread)) = (self.stop.take(), self.thread.take()) {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    while let Ok((stream, _)) = listener.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let response = Response::builder().status(status).header(http::header::CONTENT_TYPE, "application/json");
    response.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

fn json_or_text(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().strip_prefix("/2018-06-01/runtime/").unwrap_or_default();
    let route: Vec<&str> = path.split('/').collect();
    if parts.method == Method::GET && route == ["invocation", "next"] {
        return Ok(next(&shared).await);
    }
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let outcome = match (parts.method, route.as_slice()) {
        (Method::POST, ["init", "error"]) => {
            *shared.init_error.lock().unwrap() = Some(json_or_text(&body));
            return Ok(reply(StatusCode::ACCEPTED, json!({"status": "OK"})));
        }
        (Method::POST, ["invocation", _, "response"]) => Outcome::Response(json_or_text(&body)),
        (Method::POST, ["invocation", _, "error"]) => {
            let diagnostic = json_or_text(&body);
            let header = parts.headers.get("lambda-runtime-function-error-type").and_then(|h| h.to_str().ok());
            Outcome::Error {
                error_type: diagnostic["errorType"].as_str().or(header).unwrap_or_default().to_owned(),
                error_message: diagnostic["errorMessage"].as_str().unwrap_or_default().to_owned(),
            }
        }
        _ => return Ok(reply(StatusCode::NOT_FOUND, json!({"errorType": "NotFound", "errorMessage": path}))),
    };
    // The lock is held while sending, so `answer_of` cannot withdraw the invocation in between.
    if let Some(tx) = shared.waiting.lock().unwrap().remove(route[1]) {
        let _ = tx.send(outcome);
        return Ok(reply(StatusCode::ACCEPTED, json!({"status": "OK"})));
    }
    let message = format!("no invocation {} awaits an answer", route[1]);
    Ok(reply(StatusCode::BAD_REQUEST, json!({"errorType": "InvalidRequestID", "errorMessage": message})))
}

/// Long-polls: blocks until an invocation is queued. Concurrent pollers take turns at the queue.
async fn next(shared: &Shared) -> Response<Full<Bytes>> {
    *shared.polls.lock().unwrap() += 1;
    shared.polled.notify_all();
    loop {
        let (id, response) = shared.queue_rx.lock().await.recv().await.expect("the sender lives in `shared`");
        if shared.waiting.lock().unwrap().contains_key(&id) {
            return response;
        } // else `invoke` already gave up on it
    }
}
