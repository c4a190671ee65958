//! The rollout queue: `SendMessageBatch` over SQS's JSON API (`AmazonSQS.SendMessageBatch`), ten messages a call.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{JsonApi, Misconfigured, Service};

/// SQS takes at most this many messages a call.
pub const BATCH: usize = 10;

/// The longest one `SendMessageBatch` may take. SQS answers in tens of milliseconds; a start sends only while this
/// much time is left, and a send that timed out may still have been taken (then the target gets a second message,
/// which its record makes harmless).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

const SQS: Service = Service {
    name: "sqs",
    label: "the rollout queue",
    endpoint_variable: "AWS_ENDPOINT_URL_SQS",
    target_prefix: "AmazonSQS",
    timeout: SEND_TIMEOUT,
};

/// One queue, by its URL.
pub struct Queue {
    api: JsonApi,
    url: String,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("url", &self.url).finish_non_exhaustive()
    }
}

/// `SendMessageBatch`'s answer: the entries it did not take (the others it did).
#[derive(Deserialize)]
struct Sent {
    #[serde(default, rename = "Failed")]
    failed: Vec<Unsent>,
}

#[derive(Deserialize)]
struct Unsent {
    #[serde(rename = "Id")]
    id: String,
}

/// The queue could not take the messages: why, without a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueueFailure(pub String);

impl Queue {
    /// The queue at `url` (as the configuration checked it: it is only named in each call's body), reached and
    /// signed as the AWS SDKs would from `env` (`AWS_ENDPOINT_URL_SQS`, else `AWS_ENDPOINT_URL`, else the region's
    /// endpoint). Nothing is sent yet.
    pub(crate) fn new(url: &str, env: impl Fn(&str) -> Option<String>) -> Result<Queue, Misconfigured> {
        Ok(Queue { api: JsonApi::new(&SQS, env)?, url: url.to_owned() })
    }

    /// Sends up to [`BATCH`] bodies in one call; the positions of those SQS did not take (to send again).
    pub async fn send_batch(&self, bodies: &[String]) -> Result<Vec<usize>, QueueFailure> {
        let entries: Vec<Value> =
            bodies.iter().enumerate().map(|(i, body)| json!({ "Id": i.to_string(), "MessageBody": body })).collect();
        let body = json!({ "QueueUrl": self.url, "Entries": entries });
        let answer = self.api.call("SendMessageBatch", &body).await;
        let answer = answer.map_err(|refusal| QueueFailure(refusal.describe("SQS", "SendMessageBatch")))?;
        let sent: Sent = serde_json::from_value(answer)
            .map_err(|_| QueueFailure("SQS SendMessageBatch: an answer of another shape".to_owned()))?;
        Ok(sent.failed.iter().filter_map(|unsent| unsent.id.parse().ok()).collect())
    }
}
