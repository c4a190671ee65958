//! A stand-in for the AWS Parameters and Secrets Lambda Extension's HTTP API on loopback: the two GET routes, the
//! session-token header check, and AWS's error answers for a missing secret or parameter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::json;

pub struct Extension {
    pub port: u16,
    requests: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

struct Store {
    /// Requests answered 503 (throttled) before the first real answer.
    throttled: AtomicUsize,
    session_token: String,
    secrets: HashMap<String, String>,
    parameters: HashMap<String, String>,
}

impl Extension {
    /// Serves `secrets` (id → SecretString) and `parameters` (name → value) to callers presenting `session_token`.
    pub fn start(session_token: &str, secrets: &[(&str, &str)], parameters: &[(&str, &str)]) -> Extension {
        Extension::start_throttled(0, session_token, secrets, parameters)
    }

    /// The same, answering the first `throttled` requests 503, as a throttled Secrets Manager makes the extension do.
    pub fn start_throttled(
        throttled: usize,
        session_token: &str,
        secrets: &[(&str, &str)],
        parameters: &[(&str, &str)],
    ) -> Extension {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let pairs = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let store = Arc::new(Store {
            throttled: AtomicUsize::new(throttled),
            session_token: session_token.to_owned(),
            secrets: pairs(secrets),
            parameters: pairs(parameters),
        });
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (store, counted) = (store.clone(), counted.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let reply = answer(&store, &req);
                        async move { Ok::<_, std::convert::Infallible>(reply) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Extension { port, requests, _runtime: runtime }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn answer(store: &Store, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r
    };
    if store.throttled.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "ThrottlingException: Rate exceeded".into());
    }
    let presented = req.headers().get("x-aws-parameters-secrets-token").and_then(|v| v.to_str().ok());
    if presented != Some(store.session_token.as_str()) {
        return reply(StatusCode::UNAUTHORIZED, "X-Aws-Parameters-Secrets-Token header is missing or invalid".into());
    }
    let query: HashMap<String, String> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()).into_owned().collect();
    let missing = |kind: &str, message: &str| json!({ "__type": kind, "message": message }).to_string();
    match req.uri().path() {
        "/secretsmanager/get" => match query.get("secretId").and_then(|id| store.secrets.get(id)) {
            Some(secret) => reply(StatusCode::OK, json!({ "Name": "wx", "SecretString": secret }).to_string()),
            None => reply(
                StatusCode::BAD_REQUEST,
                missing("ResourceNotFoundException", "Secrets Manager can't find the specified secret."),
            ),
        },
        "/systemsmanager/parameters/get" => match query.get("name").and_then(|n| store.parameters.get(n)) {
            Some(value) if query.get("withDecryption").map(String::as_str) == Some("true") => reply(
                StatusCode::OK,
                json!({ "Parameter": { "Name": query["name"], "Type": "SecureString", "Value": value } }).to_string(),
            ),
            Some(_) => reply(StatusCode::OK, json!({ "Parameter": { "Value": "AQICAH-still-encrypted" } }).to_string()),
            None => reply(StatusCode::BAD_REQUEST, missing("ParameterNotFound", "Parameter not found.")),
        },
        _ => reply(StatusCode::NOT_FOUND, "not found".into()),
    }
}
