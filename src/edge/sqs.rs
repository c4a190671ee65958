//! A batch from the rollout queue, as Lambda's SQS event source mapping delivers it: each record one target of a
//! rollout, run a few at a time within the invocation's deadline; the answer lists the records worth delivering
//! again (`batchItemFailures`, the mapping's `ReportBatchItemFailures`), and every other one is deleted.

use std::time::Instant;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use crate::app::App;
use crate::error::Error;
use crate::observe::{Outcome, RequestIds, Usage};
use crate::present;
use crate::rollout::Rollouts;

/// Whether `event` is an SQS batch: `Records` whose first names `aws:sqs` as its source.
pub(super) fn is_queue_batch(event: &Value) -> bool {
    event.pointer("/Records/0/eventSource").and_then(Value::as_str) == Some("aws:sqs")
}

/// Runs the batch's records, each with its own line; answers `{"batchItemFailures":[…]}`.
pub(super) async fn consume(app: &App, event: Value, deadline: Instant, ids: RequestIds<'_>) -> Result<Value, Error> {
    let started = Instant::now();
    let refuse = |detail: String| {
        let error = Error::InvalidEvent { method: present::NO_METHOD, detail };
        Outcome::of(&Err(error.clone()), "invalid", Usage::default(), started).write(ids, "", None, app.metrics);
        Err(error)
    };
    let Some(rollouts) = &app.rollouts else {
        return refuse(format!("an SQS batch, but this function runs no rollouts: {}", super::no_rollouts(app)));
    };
    let batch: SqsEvent = match serde_json::from_value(event) {
        Ok(batch) => batch,
        Err(e) => return refuse(format!("an SQS batch that does not read ({e})")),
    };
    let runs: Vec<_> = batch.records.iter().map(|record| run(app, rollouts, record, deadline, ids)).collect();
    let ran: Vec<(Option<String>, bool)> =
        stream::iter(runs).buffer_unordered(rollouts.batch_concurrency()).collect().await;
    let mut answer = SqsBatchResponse::default();
    for (message_id, retry) in ran {
        if retry {
            // A record without an id cannot be named: Lambda then retries the whole batch, which is still safe.
            answer.add_failure(message_id.unwrap_or_default());
        }
    }
    serde_json::to_value(answer).map_err(|e| Error::Config(format!("the batch's answer: {e}")))
}

/// One record, with its line: its message id, and whether to deliver it again.
async fn run(
    app: &App,
    rollouts: &Rollouts,
    record: &SqsMessage,
    deadline: Instant,
    ids: RequestIds<'_>,
) -> (Option<String>, bool) {
    let receive_count = record.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
    let body = record.body.as_deref().unwrap_or_default();
    let handled = rollouts.handle_message(&app.caller, body, receive_count, deadline).await;
    handled.outcome.write(ids, &handled.action, None, app.metrics);
    (record.message_id.clone(), handled.retry)
}
