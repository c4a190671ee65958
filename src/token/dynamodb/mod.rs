//! The token store on DynamoDB (`WX_TOKEN_CACHE=dynamodb://<table>`): the same semantics as the Redis store, without
//! a VPC or a cache cluster to run.
//!
//! # The table
//!
//! One table, partition key `pk` (string) only, no sort key, on-demand (PAY_PER_REQUEST), with DynamoDB's TTL on the
//! attribute `ttl`. The keys are the Redis store's, and never hold a secret:
//!
//! | item | attributes |
//! |---|---|
//! | a token, `wx:token:<endpoint>:<appid>` (and a platform's) | `v`: the token, `exp_ms`: when WeChat stops taking it (unix ms), `ttl`: when it is due for refresh (unix s) |
//! | its refresh lease, `<key>:lock` | `holder`: a random value, `until_ms`: when the lease ends (unix ms), `ttl` |
//! | a durable value, `wx:platform:<appid>:ticket`, `…:refresh:<authorizer>` | `v` only: no `ttl`, so it never expires |
//!
//! DynamoDB deletes expired items late (within days), so every read checks the time itself: a token counts from the
//! moment it is due for refresh (`exp_ms` less [`REFRESH_MARGIN`], as the Redis TTL does) as absent, and a lease as
//! free once `until_ms` has passed. Compare-and-set and compare-and-delete are condition expressions; every read is
//! strongly consistent.
//!
//! # The client
//!
//! A thin client of DynamoDB's JSON API over `reqwest` (`POST /`, `X-Amz-Target: DynamoDB_20120810.<Op>`), signed
//! with SigV4 by [`super::sigv4`], not the AWS SDK (which would double the artefact and its cold start). Region,
//! credentials and endpoint come from the environment as the AWS SDKs read them, once, when the store is made.
//! Every call is bounded by [`OP_TIMEOUT`]; after a failure the token-cache operations rest for a moment (the
//! function works from its own memory), while durable operations are still tried, as with Redis. A failed call is
//! not retried here (the invocation's deadline is short and the caller has a fallback); a pooled connection the
//! server closed is reopened by the HTTP client before the request is sent.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::sigv4::{Credentials, Signer};
use super::store::{lock_key, Breaker, DurableStore, Lock, StoreFailure, TokenStore};
use super::{CachedToken, REFRESH_MARGIN};
use crate::clock::{self, now_ms};
use crate::error::chain;

/// The longest any one DynamoDB call may take, connection and TLS handshake included. DynamoDB answers in a few
/// milliseconds, but the first call of a cold container also opens TCP and TLS to the regional endpoint (tens of
/// milliseconds, sometimes a few hundred): 1 s leaves room for that and is still a third of a 3 s invocation.
pub const OP_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an idle connection to DynamoDB is kept for the next call.
const POOL_IDLE: Duration = Duration::from_secs(30);
/// A `keys` scan reads at most this many pages (1 MB each): far beyond any platform's mini programs.
const MAX_SCAN_PAGES: usize = 64;
/// An answer larger than this is broken (a scan page is at most 1 MB).
const MAX_ANSWER: usize = 4 << 20;
/// How long [`DynamoStore::create_table`] waits for the table to become ACTIVE.
const CREATE_WAIT: Duration = Duration::from_secs(60);
/// The most of an AWS error message quoted in a failure.
const MESSAGE_EXCERPT: usize = 200;

/// What a call came to, short of a failure: its answer, or a condition that did not hold.
enum Outcome {
    Done(Value),
    ConditionFailed,
}

impl Outcome {
    /// Whether a conditional write happened.
    fn applied(self) -> bool {
        matches!(self, Outcome::Done(_))
    }
}

/// The fleet's token cache and a platform's durable state in one DynamoDB table (see the module's documentation for
/// its layout).
pub struct DynamoStore {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    /// The `Host` header as the request carries it (and as it is signed).
    host: String,
    table: String,
    signer: Signer,
    /// The token cache's rest after a failure.
    breaker: Breaker,
}

impl DynamoStore {
    /// A store on `table`, its region, credentials and endpoint read through `env` (the process's environment, or a
    /// test's map) as the AWS SDKs read them: `AWS_REGION` (else `AWS_DEFAULT_REGION`); `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` (what Lambda sets from the function's role);
    /// `AWS_ENDPOINT_URL_DYNAMODB`, else `AWS_ENDPOINT_URL`, else `https://dynamodb.<region>.amazonaws.com` (`.com.cn`
    /// in the China regions). Nothing is sent yet: a cold start neither waits for nor fails on DynamoDB.
    pub fn new(table: &str, env: impl Fn(&str) -> Option<String>) -> Result<DynamoStore, StoreFailure> {
        let get = |name: &str| env(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let missing = |what: &str| StoreFailure(format!("the DynamoDB store needs {what}"));
        let region = get("AWS_REGION")
            .or_else(|| get("AWS_DEFAULT_REGION"))
            .ok_or_else(|| missing("AWS_REGION (or AWS_DEFAULT_REGION)"))?;
        if !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(StoreFailure("AWS_REGION is not a region name (letters, digits and -)".to_owned()));
        }
        let credentials = Credentials {
            access_key_id: get("AWS_ACCESS_KEY_ID").ok_or_else(|| missing("AWS_ACCESS_KEY_ID"))?.into(),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY").ok_or_else(|| missing("AWS_SECRET_ACCESS_KEY"))?.into(),
            session_token: get("AWS_SESSION_TOKEN").map(SecretString::from),
        };
        let (endpoint, host) = endpoint(&get, &region)?;
        // A redirect would carry a signed request (and the session token) wherever it points. A connection idle for
        // longer than POOL_IDLE is not reused (the endpoint or a NAT may have dropped it): a new one is opened.
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        let http = http.connect_timeout(OP_TIMEOUT).pool_idle_timeout(POOL_IDLE).tcp_nodelay(true).build();
        let http = http.map_err(|e| StoreFailure(format!("cannot build the HTTP client: {}", e.without_url())))?;
        Ok(DynamoStore {
            http,
            endpoint,
            host,
            table: table.to_owned(),
            signer: Signer { credentials, region, service: "dynamodb" },
            breaker: Breaker::default(),
        })
    }

    /// [`DynamoStore::new`] with the process's environment.
    pub fn from_env(table: &str) -> Result<DynamoStore, StoreFailure> {
        DynamoStore::new(table, |name| std::env::var(name).ok())
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (`pk` a string partition key, on demand) unless it exists, and waits until it is ACTIVE
    /// (for a minute at most). For local servers and tests; on AWS the template creates the table (with TTL on
    /// `ttl`, which this does not turn on: the store never relies on it).
    pub async fn create_table(&self) -> Result<(), StoreFailure> {
        let body = json!({
            "TableName": self.table,
            "AttributeDefinitions": [{ "AttributeName": "pk", "AttributeType": "S" }],
            "KeySchema": [{ "AttributeName": "pk", "KeyType": "HASH" }],
            "BillingMode": "PAY_PER_REQUEST",
        });
        match self.exchange("CreateTable", &body).await {
            Ok(_) => {}
            Err(Refusal::Failed { kind, .. }) if kind == "ResourceInUseException" => {}
            Err(refusal) => return Err(refusal.into_failure("CreateTable")),
        }
        let until = Instant::now() + CREATE_WAIT;
        loop {
            let answer = self
                .exchange("DescribeTable", &json!({ "TableName": self.table }))
                .await
                .map_err(|r| r.into_failure("DescribeTable"))?;
            if answer.pointer("/Table/TableStatus").and_then(Value::as_str) == Some("ACTIVE") {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(StoreFailure(format!("table {} not ACTIVE after {CREATE_WAIT:?}", self.table)));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A token-cache call: not tried while resting after a failure.
    async fn run(&self, op: &'static str, body: Value) -> Result<Outcome, StoreFailure> {
        self.breaker.check()?;
        self.attempt(op, body).await
    }

    /// One call: a condition that did not hold is an outcome, anything else that is not an answer a failure (and
    /// the token cache then rests).
    async fn attempt(&self, op: &'static str, body: Value) -> Result<Outcome, StoreFailure> {
        let failure = match self.exchange(op, &body).await {
            Ok(answer) => return Ok(Outcome::Done(answer)),
            Err(Refusal::ConditionFailed) => return Ok(Outcome::ConditionFailed),
            Err(refusal) => refusal.into_failure(op),
        };
        self.breaker.rest();
        tracing::warn!(op, error = %failure.0, "DynamoDB token cache unavailable; using this instance's own cache");
        Err(failure)
    }

    /// `op` signed and sent, within [`OP_TIMEOUT`]; its answer, or why not (never with a credential in it).
    async fn exchange(&self, op: &'static str, body: &Value) -> Result<Value, Refusal> {
        let body = serde_json::to_vec(body).map_err(|e| Refusal::Broken(e.to_string()))?;
        let target = format!("DynamoDB_20120810.{op}");
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
        let (status, answer) = match tokio::time::timeout(OP_TIMEOUT, sent).await {
            Err(_) => return Err(Refusal::Broken(format!("no answer within {} ms", OP_TIMEOUT.as_millis()))),
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
    fn refusal(&self, status: reqwest::StatusCode, answer: Option<&Value>) -> Refusal {
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

/// Why a call gave no answer.
enum Refusal {
    /// `ConditionalCheckFailedException`: not a failure, the compare did not match.
    ConditionFailed,
    /// DynamoDB refused it: throttled, unavailable, not authorised, a missing table (`kind` is AWS's `__type`
    /// without its namespace, empty if the answer had none).
    Failed { kind: String, status: u16, message: String },
    /// No usable answer: the network, the timeout, a broken body.
    Broken(String),
}

impl Refusal {
    fn into_failure(self, op: &str) -> StoreFailure {
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
        StoreFailure(format!("DynamoDB {op}: {why}"))
    }
}

mod item;
mod request;

use item::{item, live_token, s_of, scan_page};

/// The endpoint as the AWS SDKs find it (`AWS_ENDPOINT_URL_DYNAMODB`, else `AWS_ENDPOINT_URL`, else the region's),
/// and its `host[:port]` for the signature.
fn endpoint(get: &impl Fn(&str) -> Option<String>, region: &str) -> Result<(reqwest::Url, String), StoreFailure> {
    let (endpoint, variable) = match (get("AWS_ENDPOINT_URL_DYNAMODB"), get("AWS_ENDPOINT_URL")) {
        (Some(url), _) => (url, "AWS_ENDPOINT_URL_DYNAMODB"),
        (None, Some(url)) => (url, "AWS_ENDPOINT_URL"),
        (None, None) => {
            let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
            (format!("https://dynamodb.{region}.{suffix}"), "AWS_REGION")
        }
    };
    // The URL is not echoed: it is ours to read, not to show.
    let not_endpoint = || StoreFailure(format!("{variable} must be an http(s) URL without a path or query"));
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

#[async_trait]
impl TokenStore for DynamoStore {
    async fn load(&self, key: &str) -> Result<Option<CachedToken>, StoreFailure> {
        let answer = self.run("GetItem", request::get(&self.table, key)).await?;
        Ok(match answer {
            Outcome::Done(answer) => item(answer).and_then(|item| live_token(&item, now_ms())),
            Outcome::ConditionFailed => None,
        })
    }

    async fn save(&self, key: &str, token: &CachedToken) -> Result<(), StoreFailure> {
        let due_ms = token.expires_at_ms.saturating_sub(REFRESH_MARGIN.as_millis() as u64);
        if due_ms <= now_ms() {
            return Ok(());
        }
        let body = request::save(&self.table, key, token.value.expose_secret(), token.expires_at_ms, due_ms);
        self.run("PutItem", body).await.map(|_| ())
    }

    async fn remove_if(&self, key: &str, value: &str) -> Result<bool, StoreFailure> {
        Ok(self.run("DeleteItem", request::remove_if(&self.table, key, value, now_ms())).await?.applied())
    }

    async fn lock(&self, key: &str, lease: Duration) -> Result<Lock, StoreFailure> {
        let holder = format!("{:032x}", rand::random::<u128>());
        let now = now_ms();
        let body = request::lock(&self.table, key, &holder, now, now + lease.as_millis() as u64);
        Ok(if self.run("PutItem", body).await?.applied() { Lock::Held(holder) } else { Lock::Taken })
    }

    async fn unlock(&self, key: &str, holder: &str) -> Result<(), StoreFailure> {
        self.run("DeleteItem", request::unlock(&self.table, key, holder)).await.map(|_| ())
    }
}

/// Durable values are items without a `ttl` (DynamoDB never expires them). They are tried even while the token
/// cache rests: a durable value has no local copy to fall back on (as with Redis).
#[async_trait]
impl DurableStore for DynamoStore {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreFailure> {
        Ok(match self.attempt("GetItem", request::get(&self.table, key)).await? {
            Outcome::Done(answer) => item(answer).and_then(|item| s_of(&item, "v").map(str::to_owned)),
            Outcome::ConditionFailed => None,
        })
    }

    async fn swap(&self, key: &str, expected: Option<&str>, value: &str) -> Result<bool, StoreFailure> {
        Ok(self.attempt("PutItem", request::swap(&self.table, key, expected, value)).await?.applied())
    }

    async fn delete_if(&self, key: &str, expected: &str) -> Result<bool, StoreFailure> {
        Ok(self.attempt("DeleteItem", request::delete_if(&self.table, key, expected)).await?.applied())
    }

    async fn keys(&self, prefix: &str) -> Result<Vec<String>, StoreFailure> {
        let mut keys = Vec::new();
        let mut start = None;
        for _ in 0..MAX_SCAN_PAGES {
            let answer = match self.attempt("Scan", request::scan(&self.table, prefix, start.as_ref())).await? {
                Outcome::Done(answer) => answer,
                Outcome::ConditionFailed => break,
            };
            let (page, next) = scan_page(&answer);
            // The filter is DynamoDB's; the prefix is checked here too, so a server that ignored it changes nothing.
            keys.extend(page.into_iter().filter(|k| k.starts_with(prefix)));
            start = next;
            if start.is_none() {
                keys.sort();
                keys.dedup();
                return Ok(keys);
            }
        }
        Err(StoreFailure(format!("DynamoDB Scan: more than {MAX_SCAN_PAGES} pages under {prefix}")))
    }
}

#[cfg(test)]
mod tests;
