//! A client of the Lambda Runtime API (`/2018-06-01/runtime/…`): one kept-alive HTTP/1.1 connection per worker.
//!
//! Why this and not lambda_runtime's loop: see [`super`]. The protocol is four requests; this file is all of it.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::InvalidUri;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::observe::RequestIds;

const API_VERSION: &str = "/2018-06-01/runtime";
const USER_AGENT: &str = concat!("wx-plugin-manager/", env!("CARGO_PKG_VERSION"));
/// Lambda's own ceiling on a synchronous invocation's payload; anything longer is not from Lambda.
const MAX_EVENT: usize = 6 * 1024 * 1024;
/// Connecting to a Runtime API on the same host takes microseconds; this bounds a broken one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Posting an answer or an init error: the Runtime API acknowledges at once.
const POST_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the Runtime API could not be used. Never carries an event or an answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Not under Lambda, nor under a local runtime such as `cargo lambda watch`.
    #[error("AWS_LAMBDA_RUNTIME_API is not set: this binary runs under Lambda or a local Runtime API")]
    NotSet,
    /// `AWS_LAMBDA_RUNTIME_API`'s value, which [`Endpoint::parse`] refused.
    #[error("AWS_LAMBDA_RUNTIME_API {0:?} is not host:port or http://host:port[/prefix]")]
    BadEndpoint(String),
    /// The Runtime API could not be connected to: refused, a failed handshake, or no connection within 2 s.
    #[error("cannot reach the Runtime API at {authority}: {why}")]
    Connect {
        /// The `host:port` dialled.
        authority: String,
        /// The connect or handshake error, or the timeout.
        why: String,
    },
    /// A request that broke off or went unanswered, or an event that could not be read: what happened.
    #[error("Runtime API exchange failed: {0}")]
    Exchange(String),
    /// An HTTP status other than success, and what was asked (`invocation/next`, `invocation response`…).
    #[error("Runtime API answered {0} to {1}")]
    Status(u16, &'static str),
    /// An invocation without a header Lambda always sends: which one.
    #[error("Runtime API sent an invocation without {0}")]
    Malformed(&'static str),
}

/// Where the Runtime API listens, as `AWS_LAMBDA_RUNTIME_API` gives it: Lambda's `host:port`, or a local runtime's
/// full URL with a path prefix (`cargo lambda watch --only-lambda-apis` serves `http://127.0.0.1:9000/.rt/<bin>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    authority: String,
    /// The `Host` header: the authority, checked once.
    host: HeaderValue,
    prefix: String,
}

impl Endpoint {
    /// From `AWS_LAMBDA_RUNTIME_API`, which Lambda sets for every custom runtime.
    pub fn from_env() -> Result<Endpoint, ApiError> {
        Endpoint::parse(&std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(|_| ApiError::NotSet)?)
    }

    /// Reads `host:port` or `http://host:port[/prefix]`; refuses another scheme, a missing port, spaces or `?`.
    pub fn parse(value: &str) -> Result<Endpoint, ApiError> {
        let bad = || ApiError::BadEndpoint(value.to_owned());
        let rest = match value.split_once("://") {
            Some(("http", rest)) => rest,
            Some(_) => return Err(bad()),
            None => value,
        };
        let (authority, prefix) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let uri_safe = |s: &str| !s.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'?');
        if authority.is_empty() || !authority.contains(':') || !uri_safe(authority) || !uri_safe(prefix) {
            return Err(bad());
        }
        let prefix = prefix.trim_end_matches('/');
        let prefix = if prefix.is_empty() { String::new() } else { format!("/{prefix}") };
        let host = HeaderValue::from_str(authority).map_err(|_| bad())?;
        Ok(Endpoint { authority: authority.to_owned(), host, prefix })
    }

    /// The origin-form target of a request (the authority goes in `Host`).
    fn target(&self, path: &str) -> String {
        format!("{}{API_VERSION}{path}", self.prefix)
    }
}

/// One invocation, as `/invocation/next` delivered it.
#[derive(Debug)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`: names the invocation in the answer's path and in its log record.
    pub request_id: String,
    /// `Lambda-Runtime-Deadline-Ms`: unix milliseconds (a budget, from `cargo lambda watch`).
    pub deadline_ms: u64,
    /// `Lambda-Runtime-Invocation-Id`, echoed with the answer so that Lambda can refuse a stale one.
    invocation_id: Option<String>,
    /// `Lambda-Runtime-Trace-Id` (`Root=1-…;Parent=…;Sampled=…`), for the record; never put in the environment.
    trace_header: Option<String>,
    /// The event as Lambda sent it (at most 6 MiB), not yet parsed.
    pub payload: Bytes,
}

impl Invocation {
    /// The ids its record carries: the request id, and the X-Ray trace id (the header's `Root`) when there is one.
    pub fn ids(&self) -> RequestIds<'_> {
        RequestIds { request_id: &self.request_id, xray_trace_id: self.trace_header.as_deref().and_then(xray_root) }
    }
}

/// The `Root` field of a trace header (`Root=1-…;Parent=…;Sampled=1`), when it is a plain token.
fn xray_root(header: &str) -> Option<&str> {
    let root = header.split(';').find_map(|field| field.trim().strip_prefix("Root="))?;
    let plain = !root.is_empty() && root.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    plain.then_some(root)
}

/// A kept-alive connection to the Runtime API, opened again whenever it breaks.
pub struct Connection {
    endpoint: Endpoint,
    sender: Option<http1::SendRequest<Full<Bytes>>>,
    /// Bounds each post. One timer, moved forward post after post: moving a timer later costs nothing, where
    /// arming a new one wakes the runtime's driver through a syscall (twice an invocation, with reqwest's own).
    watchdog: Pin<Box<Sleep>>,
}

impl Connection {
    /// Not yet connected: the first request connects.
    pub fn new(endpoint: Endpoint) -> Connection {
        let watchdog = Box::pin(tokio::time::sleep(POST_TIMEOUT));
        Connection { endpoint, sender: None, watchdog }
    }

    /// Waits for the next invocation: as long as Lambda has none (the process is frozen meanwhile).
    pub async fn next(&mut self) -> Result<Invocation, ApiError> {
        let request = self.request(Method::GET, "/invocation/next", Bytes::new())?;
        let response = self.send(request, None).await?;
        if response.status() != StatusCode::OK {
            return Err(ApiError::Status(response.status().as_u16(), "invocation/next"));
        }
        let (parts, body) = response.into_parts();
        let text = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let request_id = text("lambda-runtime-aws-request-id")
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b'?'))
            .ok_or(ApiError::Malformed("a request id"))?
            .to_owned();
        let deadline_ms =
            text("lambda-runtime-deadline-ms").and_then(|v| v.parse().ok()).ok_or(ApiError::Malformed("a deadline"))?;
        let invocation_id = text("lambda-runtime-invocation-id").map(str::to_owned);
        let trace_header = text("lambda-runtime-trace-id").map(str::to_owned);
        let payload = Limited::new(body, MAX_EVENT)
            .collect()
            .await
            .map_err(|e| ApiError::Exchange(format!("reading the event: {e}")))?
            .to_bytes();
        Ok(Invocation { request_id, deadline_ms, invocation_id, trace_header, payload })
    }

    /// Posts the invocation's result.
    pub async fn respond(&mut self, invocation: &Invocation, body: Vec<u8>) -> Result<(), ApiError> {
        let path = format!("/invocation/{}/response", invocation.request_id);
        let mut request = self.request(Method::POST, &path, body.into())?;
        echo_invocation_id(&mut request, invocation);
        self.post(request, "invocation response").await
    }

    /// Posts the invocation's error: `{"errorType","errorMessage"}`, with the type in the header too.
    pub async fn fail(&mut self, invocation: &Invocation, error_type: &str, body: Vec<u8>) -> Result<(), ApiError> {
        let path = format!("/invocation/{}/error", invocation.request_id);
        let mut request = self.request(Method::POST, &path, body.into())?;
        set_error_type(&mut request, error_type);
        echo_invocation_id(&mut request, invocation);
        self.post(request, "invocation error").await
    }

    /// Posts a cold start's failure, so that Lambda's init error carries its type and message.
    pub async fn init_error(&mut self, error_type: &str, body: Vec<u8>) -> Result<(), ApiError> {
        let mut request = self.request(Method::POST, "/init/error", body.into())?;
        set_error_type(&mut request, error_type);
        self.post(request, "init error").await
    }

    fn request(&self, method: Method, path: &str, body: Bytes) -> Result<Request<Full<Bytes>>, ApiError> {
        let has_body = !body.is_empty();
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() =
            self.endpoint.target(path).parse().map_err(|e: InvalidUri| ApiError::Exchange(e.to_string()))?;
        let headers = request.headers_mut();
        headers.insert(header::HOST, self.endpoint.host.clone());
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        if has_body {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        Ok(request)
    }

    /// An answer is posted once, then once more on a fresh connection if the first broke off before any reply:
    /// the Runtime API takes one answer per invocation and refuses a second, so nothing can happen twice.
    async fn post(&mut self, request: Request<Full<Bytes>>, what: &'static str) -> Result<(), ApiError> {
        let again = clone_request(&request);
        let response = match self.send(request, Some(POST_TIMEOUT)).await {
            Ok(response) => response,
            Err(ApiError::Exchange(_)) => self.send(again, Some(POST_TIMEOUT)).await?,
            Err(other) => return Err(other),
        };
        let status = response.status();
        // Drain the acknowledgement so the connection can carry the next poll.
        let _ = Limited::new(response.into_body(), 64 * 1024).collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(ApiError::Status(status.as_u16(), what))
        }
    }

    async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
        limit: Option<Duration>,
    ) -> Result<Response<Incoming>, ApiError> {
        let (sender, watchdog) = (&mut self.sender, &mut self.watchdog);
        let exchange = async {
            let sender = ready(sender, &self.endpoint).await?;
            sender.send_request(request).await.map_err(|e| ApiError::Exchange(e.to_string()))
        };
        let result = match limit {
            Some(limit) => {
                watchdog.as_mut().reset(Instant::now() + limit);
                tokio::select! {
                    result = exchange => result,
                    () = watchdog.as_mut() => Err(ApiError::Exchange(format!("no answer in {limit:?}"))),
                }
            }
            None => exchange.await,
        };
        if result.is_err() {
            self.sender = None;
        }
        result
    }
}

/// The connection's sender, ready for a request: connected again if it broke.
async fn ready<'a>(
    sender: &'a mut Option<http1::SendRequest<Full<Bytes>>>,
    endpoint: &Endpoint,
) -> Result<&'a mut http1::SendRequest<Full<Bytes>>, ApiError> {
    if sender.as_ref().is_none_or(|s| s.is_closed()) {
        *sender = Some(connect(endpoint).await?);
    }
    let sender = sender.as_mut().expect("just connected");
    sender.ready().await.map_err(|e| ApiError::Exchange(e.to_string()))?;
    Ok(sender)
}

async fn connect(endpoint: &Endpoint) -> Result<http1::SendRequest<Full<Bytes>>, ApiError> {
    let authority = &endpoint.authority;
    let failed = |why: String| ApiError::Connect { authority: authority.clone(), why };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority.as_str()))
        .await
        .map_err(|_| failed(format!("no connection in {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| failed(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| failed(e.to_string()))?;
    // The connection is driven by its own task; it ends when the sender is dropped or the peer hangs up.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn echo_invocation_id(request: &mut Request<Full<Bytes>>, invocation: &Invocation) {
    if let Some(value) = invocation.invocation_id.as_deref().and_then(|id| id.parse().ok()) {
        request.headers_mut().insert("lambda-runtime-invocation-id", value);
    }
}

fn set_error_type(request: &mut Request<Full<Bytes>>, error_type: &str) {
    if let Ok(value) = error_type.parse() {
        request.headers_mut().insert("lambda-runtime-function-error-type", value);
    }
}

fn clone_request(request: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_xray_trace_id_is_the_trace_headers_root() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0";
        assert_eq!(xray_root(header), Some("1-5759e988-bd862e3fe1be46a994272793"));
        assert_eq!(xray_root("Sampled=0; Root=1-a-b"), Some("1-a-b"));
        for odd in ["", "Parent=53995c3f42cd8ad8", "Root=", "Root=1-a\"b", "root=1-a-b"] {
            assert_eq!(xray_root(odd), None, "{odd:?}");
        }
    }

    #[test]
    fn an_endpoint_is_lambdas_host_port_or_a_local_runtimes_url() {
        let lambda = Endpoint::parse("127.0.0.1:9001").unwrap();
        assert_eq!(lambda.authority, "127.0.0.1:9001");
        assert_eq!(lambda.target("/invocation/next"), "/2018-06-01/runtime/invocation/next");
        let watch = Endpoint::parse("http://127.0.0.1:9000/.rt/wx-plugin-manager/").unwrap();
        assert_eq!(watch.authority, "127.0.0.1:9000");
        assert_eq!(watch.target("/invocation/next"), "/.rt/wx-plugin-manager/2018-06-01/runtime/invocation/next");
        for bad in ["", "https://127.0.0.1:9001", "localhost", "http://", "127.0.0.1:9001/a b", "h:1/?x"] {
            assert!(matches!(Endpoint::parse(bad), Err(ApiError::BadEndpoint(_))), "{bad:?}");
        }
    }
}
