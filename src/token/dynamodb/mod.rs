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
//! with SigV4 by `crate::aws`, not the AWS SDK (which would double the artefact and its cold start). Region,
//! credentials and endpoint come from the environment as the AWS SDKs read them, once, when the store is made.
//! Every call is bounded by [`OP_TIMEOUT`]; after a failure the token-cache operations rest for a moment (the
//! function works from its own memory), while durable operations are still tried, as with Redis. A failed call is
//! not retried here (the invocation's deadline is short and the caller has a fallback); a pooled connection the
//! server closed is reopened by the HTTP client before the request is sent.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use super::store::{lock_key, Breaker, DurableStore, Lock, StoreFailure, TokenStore};
use super::{CachedToken, REFRESH_MARGIN};
use crate::aws::{JsonApi, Refusal, Service};
use crate::clock::now_ms;

/// The longest any one DynamoDB call may take, connection and TLS handshake included. DynamoDB answers in a few
/// milliseconds, but the first call of a cold container also opens TCP and TLS to the regional endpoint (tens of
/// milliseconds, sometimes a few hundred): 1 s leaves room for that and is still a third of a 3 s invocation.
pub const OP_TIMEOUT: Duration = Duration::from_secs(1);
/// A `keys` scan reads at most this many pages (1 MB each): far beyond any platform's mini programs.
const MAX_SCAN_PAGES: usize = 64;
/// `BatchGetItem` takes at most this many keys.
const BATCH_GET: usize = 100;
/// `BatchGetItem` calls in flight at once.
const BATCHES_AT_ONCE: usize = 8;
/// Calls for one batch, its unprocessed keys again included.
const BATCH_GET_TRIES: usize = 5;
/// How long [`DynamoStore::create_table`] waits for the table to become ACTIVE.
const CREATE_WAIT: Duration = Duration::from_secs(60);
/// DynamoDB's JSON API.
const DYNAMODB: Service = Service {
    name: "dynamodb",
    label: "the DynamoDB store",
    endpoint_variable: "AWS_ENDPOINT_URL_DYNAMODB",
    target_prefix: "DynamoDB_20120810",
    timeout: OP_TIMEOUT,
};

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
    api: JsonApi,
    table: String,
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
        let api = JsonApi::new(&DYNAMODB, env).map_err(|e| StoreFailure(e.0))?;
        Ok(DynamoStore { api, table: table.to_owned(), breaker: Breaker::default() })
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
            Err(refusal) => return Err(StoreFailure(refusal.describe("DynamoDB", "CreateTable"))),
        }
        let until = Instant::now() + CREATE_WAIT;
        loop {
            let answer = self
                .exchange("DescribeTable", &json!({ "TableName": self.table }))
                .await
                .map_err(|r| StoreFailure(r.describe("DynamoDB", "DescribeTable")))?;
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
            Err(refusal) => StoreFailure(refusal.describe("DynamoDB", op)),
        };
        self.breaker.rest();
        tracing::warn!(op, error = %failure.0, "DynamoDB token cache unavailable; using this instance's own cache");
        Err(failure)
    }

    /// `op` sent, within [`OP_TIMEOUT`]: its answer, or why not.
    async fn exchange(&self, op: &'static str, body: &Value) -> Result<Value, Refusal> {
        self.api.call(op, body).await
    }
}

mod item;
mod request;

use item::{item, live_token, live_value, s_of, scan_items};

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

/// Durable values are items without a `ttl` (DynamoDB never expires them), but for a rollout's records, which carry
/// one and count as absent once it has passed. They are tried even while the token cache rests: a durable value has
/// no local copy to fall back on (as with Redis).
#[async_trait]
impl DurableStore for DynamoStore {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreFailure> {
        Ok(match self.attempt("GetItem", request::get(&self.table, key)).await? {
            Outcome::Done(answer) => item(answer).and_then(|item| live_value(&item, now_ms()).map(str::to_owned)),
            Outcome::ConditionFailed => None,
        })
    }

    async fn swap(&self, key: &str, expected: Option<&str>, value: &str) -> Result<bool, StoreFailure> {
        Ok(self.attempt("PutItem", request::swap(&self.table, key, expected, value)).await?.applied())
    }

    async fn swap_expiring(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
        keep: Duration,
    ) -> Result<bool, StoreFailure> {
        let now = now_ms();
        let until_s = (now + keep.as_millis() as u64).div_ceil(1000);
        let body = request::swap_expiring(&self.table, key, expected, value, now / 1000, until_s);
        Ok(self.attempt("PutItem", body).await?.applied())
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
            let (page, next) = scan_items(&answer);
            // The filter is DynamoDB's; the prefix is checked here too, so a server that ignored it changes nothing.
            let listed = page.iter().filter_map(|item| s_of(item, "pk")).filter(|k| k.starts_with(prefix));
            keys.extend(listed.map(str::to_owned));
            start = next;
            if start.is_none() {
                keys.sort();
                keys.dedup();
                return Ok(keys);
            }
        }
        Err(StoreFailure(format!("DynamoDB Scan: more than {MAX_SCAN_PAGES} pages under {prefix}")))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreFailure> {
        let batches: Vec<_> = keys.chunks(BATCH_GET).map(|batch| self.batch_get(batch)).collect();
        let found: Vec<Result<HashMap<String, String>, StoreFailure>> =
            stream::iter(batches).buffered(BATCHES_AT_ONCE).collect().await;
        let mut values = HashMap::with_capacity(keys.len());
        for batch in found {
            values.extend(batch?);
        }
        Ok(keys.iter().map(|key| values.remove(key)).collect())
    }
}

impl DynamoStore {
    /// The live values of up to [`BATCH_GET`] keys, by key: `BatchGetItem`, and again for what DynamoDB left
    /// unprocessed (throttled), a few times.
    async fn batch_get(&self, keys: &[String]) -> Result<HashMap<String, String>, StoreFailure> {
        let mut values = HashMap::new();
        let mut body = request::batch_get(&self.table, keys);
        for _ in 0..BATCH_GET_TRIES {
            let answer = match self.attempt("BatchGetItem", body).await? {
                Outcome::Done(answer) => answer,
                Outcome::ConditionFailed => return Ok(values),
            };
            let now = now_ms();
            let items = answer.get("Responses").and_then(|r| r.get(&self.table)).and_then(Value::as_array);
            for item in items.into_iter().flatten() {
                if let (Some(key), Some(value)) = (s_of(item, "pk"), live_value(item, now)) {
                    values.insert(key.to_owned(), value.to_owned());
                }
            }
            match answer.get("UnprocessedKeys").filter(|u| u.as_object().is_some_and(|u| !u.is_empty())) {
                None => return Ok(values),
                Some(unprocessed) => body = json!({ "RequestItems": unprocessed }),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(StoreFailure(format!("DynamoDB BatchGetItem: keys still unprocessed after {BATCH_GET_TRIES} tries")))
    }
}

#[cfg(test)]
mod tests;
