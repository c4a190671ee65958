//! One AWS service's JSON API (`POST /`, `X-Amz-Target: <prefix>.<Op>`, `application/x-amz-json-1.0`): where it is,
//! with what it is signed, one call bounded and its refusal read without a credential in it.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use super::sigv4::{Credentials, Signer};
use crate::clock;
use crate::error::chain;

/// How long an idle connection is kept for the next call.
const POOL_IDLE: Duration = Duration::from_secs(30);
/// An answer larger than this is broken (a DynamoDB scan page is at most 1 MB, an SQS answer far less).
const MAX_ANSWER: usize = 4 << 20;
/// The most of an AWS error message quoted in a failure.
const MESSAGE_EXCERPT: usize = 200;

/// An AWS service as the function calls it.
pub(crate) struct Service {
    /// The signing name, and the first label of the regional host (`dynamodb`, `sqs`).
    pub name: &'static str,
    /// What the function calls it in an error (`the DynamoDB store`).
    pub label: &'static str,
    /// The variable naming its endpoint, before `AWS_ENDPOINT_URL` (`AWS_ENDPOINT_URL_DYNAMODB`).
    pub endpoint_variable: &'static str,
    /// `X-Amz-Target`'s prefix (`DynamoDB_20120810`, `AmazonSQS`).
    pub target_prefix: &'static str,
    /// The longest one call may take, connection and TLS handshake included.
    pub timeout: Duration,
}

/// The environment could not make a client: what is missing or malformed (never a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Misconfigured(pub String);

/// Why a call gave no answer.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// `ConditionalCheckFailedException`: not a failure, the compare did not match.
    ConditionFailed,
    /// The service refused it: throttled, unavailable, not authorised, a missing table or queue (`kind` is AWS's
    /// `__type` without its namespace, empty if the answer had none).
    Failed { kind: String, status: u16, message: String },
    /// No usable answer: the network, the timeout, a broken body.
    Broken(String),
}

impl Refusal {
    /// One line naming the service's operation and why.
    pub fn describe(self, service: &str, op: &str) -> String {
        let why = match self {
            Refusal::ConditionFailed => "the condition did not hold".to_owned(),
            Refusal::Failed { kind, status, message } => {
                let kind = if kind.is_empty() { format!("HTTP {status}") } else { format!("{kind} (HTTP {status})") };
                if message.is_empty() {
                    kind
                } else {
                    format!("{kind}: {message}")
                }
            }
            Refusal::Broken(why) => why,
        };
        format!("{service} {op}: {why}")
    }
}

/// A signed client of one service's JSON API.
pub(crate) struct JsonApi {
    http: reqwest::Client,
    pub(crate) endpoint: reqwest::Url,
    /// The `Host` header as the request carries it (and as it is signed).
    pub(crate) host: String,
    pub(crate) signer: Signer,
    target_prefix: &'static str,
    timeout: Duration,
}

impl JsonApi {
    /// A client of `service`, its region, credentials and endpoint read through `env` as the AWS SDKs read them:
    /// `AWS_REGION` (else `AWS_DEFAULT_REGION`); `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`
    /// (what Lambda sets from the function's role); the service's own endpoint variable, else `AWS_ENDPOINT_URL`, else
    /// `https://<service>.<region>.amazonaws.com` (`.com.cn` in the China regions). Nothing is sent yet.
    pub fn new(service: &Service, env: impl Fn(&str) -> Option<String>) -> Result<JsonApi, Misconfigured> {
        let get = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let missing = |what: &str| Misconfigured(format!("{} needs {what}", service.label));
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .ok_or_else(|| missing("AWS_REGION (or AWS_DEFAULT_REGION)"))?;
        if !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Misconfigured("AWS_REGION is not a region name (letters, digits and -)".to_owned()));
        }
        let credentials = Credentials {
            access_key_id: get("AWS_ACCESS_KEY_ID").ok_or_else(|| missing("AWS_ACCESS_KEY_ID"))?.into(),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY").ok_or_else(|| missing("AWS_SECRET_ACCESS_KEY"))?.into(),
            session_token: get("AWS_SESSION_TOKEN").map(SecretString::from),
        };
        let (endpoint, host) = endpoint(service, &get, &region)?;
        // A redirect would carry a signed request (and the session token) wherever it points. A connection idle for
        // longer than POOL_IDLE is not reused (the endpoint or a NAT may have dropped it): a new one is opened.
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        let http = http.connect_timeout(service.timeout).pool_idle_timeout(POOL_IDLE).tcp_nodelay(true).build();
        let http = http.map_err(|e| Misconfigured(format!("cannot build the HTTP client: {}", e.without_url())))?;
        Ok(JsonApi {
            http,
            endpoint,
            host,
            signer: Signer { credentials, region, service: service.name },
            target_prefix: service.target_prefix,
            timeout: service.timeout,
        })
    }

    /// `op` signed and sent, within the service's timeout; its answer, or why not (never with a credential in it).
    pub async fn call(&self, op: &str, body: &Value) -> Result<Value, Refusal> {
        let body = serde_json::to_vec(body).map_err(|e| Refusal::Broken(e.to_string()))?;
        let target = format!("{}.{op}", self.target_prefix);
        let headers = [("content-type", "application/x-amz-json-1.0"), ("x-amz-target", target.as_str())];
        let mut request = self.http.post(self.endpoint.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        for (name, value) in self.signer.sign(&self.host, &headers, &body, clock::now()) {
            request = request.header(name, value);
        }
        let sent = async {
            let response = request.body(body).send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.bytes().await?))
        };
        let (status, answer) = match tokio::time::timeout(self.timeout, sent).await {
            Err(_) => return Err(Refusal::Broken(format!("no answer within {} ms", self.timeout.as_millis()))),
            Ok(Err(e)) => return Err(Refusal::Broken(chain(&e.without_url()))),
            Ok(Ok(answer)) => answer,
        };
        if answer.len() > MAX_ANSWER {
            return Err(Refusal::Broken(format!("an answer of {} bytes", answer.len())));
        }
        let parsed: Option<Value> = serde_json::from_slice(&answer).ok();
        if status.is_success() {
            return parsed.filter(Value::is_object).ok_or_else(|| Refusal::Broken("an answer that is not JSON".into()));
        }
        Err(self.refusal(status, parsed.as_ref()))
    }

    /// An error answer read: AWS's `__type` (without its namespace) and message, the message cut before any
    /// request detail AWS echoes (an InvalidSignatureException quotes the canonical request, session token and all)
    /// and cleaned of every credential value.
    pub(crate) fn refusal(&self, status: reqwest::StatusCode, answer: Option<&Value>) -> Refusal {
        let field = |name: &str| answer.and_then(|a| a.get(name)).and_then(Value::as_str).unwrap_or_default();
        let kind = field("__type").rsplit('#').next().unwrap_or_default().to_owned();
        if kind == "ConditionalCheckFailedException" {
            return Refusal::ConditionFailed;
        }
        let message = if field("message").is_empty() { field("Message") } else { field("message") };
        let mut message = message.split("The Canonical String").next().unwrap_or_default().to_owned();
        if let Some(cut) = message.find("Authorization=") {
            message.truncate(cut);
        }
        for value in self.signer.credentials.values() {
            message = message.replace(value, "[REDACTED]");
        }
        // Cut after the credentials are: an excerpt cannot end in a piece of one.
        let message = message.trim().chars().take(MESSAGE_EXCERPT).collect();
        Refusal::Failed { kind, status: status.as_u16(), message }
    }
}

/// The endpoint as the AWS SDKs find it (the service's variable, else `AWS_ENDPOINT_URL`, else the region's), and
/// its `host[:port]` for the signature.
fn endpoint(
    service: &Service,
    get: &impl Fn(&str) -> Option<String>,
    region: &str,
) -> Result<(reqwest::Url, String), Misconfigured> {
    let (endpoint, variable) = match (get(service.endpoint_variable), get("AWS_ENDPOINT_URL")) {
        (Some(url), _) => (url, service.endpoint_variable),
        (None, Some(url)) => (url, "AWS_ENDPOINT_URL"),
        (None, None) => {
            let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
            (format!("https://{}.{region}.{suffix}", service.name), "AWS_REGION")
        }
    };
    // The URL is not echoed: it is ours to read, not to show.
    let not_endpoint = || Misconfigured(format!("{variable} must be an http(s) URL without a path or query"));
    let endpoint = reqwest::Url::parse(&endpoint).map_err(|_| not_endpoint())?;
    let host = match endpoint.host_str() {
        Some(host) if matches!(endpoint.scheme(), "http" | "https") => host.to_owned(),
        _ => return Err(not_endpoint()),
    };
    if endpoint.path() != "/"
        || endpoint.query().is_some()
        || !endpoint.username().is_empty()
        || endpoint.password().is_some()
    {
        return Err(not_endpoint());
    }
    let host = match endpoint.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    Ok((endpoint, host))
}
