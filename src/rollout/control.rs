//! The rollout's control events, direct invocations: `start`, `status`, `report`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use serde_json::{json, Map, Value};

use super::record::{random_id, Keys, RolloutRecord, TargetRecord, CHUNK, STATES};
use super::{is_rollout_id, store_unavailable, Rollouts};
use crate::aws::sqs::{Queue, QueueFailure, BATCH, SEND_TIMEOUT};
use crate::call::PluginCaller;
use crate::clock::now_ms;
use crate::error::{sdk_codes, Error, StoreFailure};
use crate::operation::Request;
use crate::present;
use crate::wechat::client::time_left;
use crate::wechat::is_appid;

/// The most targets one rollout takes.
const MAX_TARGETS: usize = 100_000;
/// Send calls in flight at once while starting.
const SENDS_AT_ONCE: usize = 8;
/// A send starts only with this much time left: its own timeout, and the start's answer.
const SEND_TIME: std::time::Duration = SEND_TIMEOUT.saturating_add(std::time::Duration::from_millis(500));
/// `report`'s page: by default, and at most.
const REPORT_PAGE: (usize, usize) = (1000, 5000);

/// The three control events, by their `rollout` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Start,
    Status,
    Report,
}

impl Control {
    /// The control an event's `rollout` field names, if it names one.
    pub fn from_event(event: &Value) -> Option<Control> {
        match event.get("rollout").and_then(Value::as_str) {
            Some("start") => Some(Control::Start),
            Some("status") => Some(Control::Status),
            Some("report") => Some(Control::Report),
            _ => None,
        }
    }

    /// The `openapi.pluginManager.<method>` its answer and errors name.
    fn method(self) -> &'static str {
        match self {
            Control::Start => "rolloutStart",
            Control::Status => "rolloutStatus",
            Control::Report => "rolloutReport",
        }
    }

    /// Its record's metric dimension.
    pub fn dimension(self) -> &'static str {
        match self {
            Control::Start => "rollout_start",
            Control::Status => "rollout_status",
            Control::Report => "rollout_report",
        }
    }
}

impl Rollouts {
    /// A control event (`{"rollout":"start"|"status"|"report", "rolloutId":…}`): its answer, or why not.
    pub(crate) async fn control(
        &self,
        caller: &PluginCaller,
        event: &Value,
        deadline: Instant,
    ) -> Result<Value, Error> {
        let invalid = |method: &'static str, detail: String| Error::InvalidEvent { method, detail };
        let Some(control) = Control::from_event(event) else {
            return Err(invalid(present::NO_METHOD, "field rollout must be start, status or report".into()));
        };
        let method = control.method();
        let id = match event.get("rolloutId").and_then(Value::as_str) {
            Some(id) if is_rollout_id(id) => id,
            _ => {
                return Err(invalid(
                    method,
                    "field rolloutId must be 1 to 64 letters, digits, '-', '_' or '.'".to_owned(),
                ))
            }
        };
        let keys = Keys::new(&self.platform, id);
        let unavailable = |failure| store_unavailable(method, failure);
        let mut answer = match control {
            Control::Start => self.start(caller, event, &keys, deadline).await?,
            Control::Status => self.status(&keys, deadline).await.map_err(unavailable)?,
            Control::Report => {
                let (after, limit) = page(event).map_err(|detail| invalid(method, detail))?;
                self.report(&keys, after, limit, deadline).await.map_err(unavailable)?
            }
        };
        let Value::Object(fields) = &mut answer else { return Ok(answer) };
        if fields.is_empty() {
            return Err(invalid(method, format!("no rollout {id} (or its records have expired)")));
        }
        fields.shift_insert(0, "rolloutId".into(), json!(id));
        Ok(present::success(method, std::mem::take(fields)))
    }

    /// Records the rollout (once: a second start of the same id must name the same event) and sends every target
    /// not settled yet, as many as time allows; the answer says how many remain for another start.
    async fn start(
        &self,
        caller: &PluginCaller,
        event: &Value,
        keys: &Keys,
        deadline: Instant,
    ) -> Result<Value, Error> {
        let method = Control::Start.method();
        let invalid = |detail: String| Error::InvalidEvent { method, detail };
        let store = |failure| store_unavailable(method, failure);
        let Some(queue) = &self.queue else {
            return Err(Error::Config(
                "no rollout queue: set WX_ROLLOUT_QUEUE_URL (the template's Rollouts=on)".into(),
            ));
        };
        let template = template(event).map_err(invalid)?;
        let given = given_targets(event).map_err(invalid)?;

        let same = |record: &RolloutRecord, targets: &BTreeSet<String>| {
            if record.event != template {
                return Err(invalid(format!(
                    "rollout {} exists with another event: start it with the same event, or use another id",
                    keys.id()
                )));
            }
            if given.as_ref().is_some_and(|given| given != targets) {
                return Err(invalid("this rollout exists with other targets: give the same, or none".into()));
            }
            Ok(())
        };
        let (record, targets) = match self.rollout(keys, deadline).await.map_err(store)? {
            Some(record) => {
                let targets = self.targets(keys, &record, deadline).await.map_err(store)?;
                same(&record, &targets)?;
                (record, targets)
            }
            None => {
                let targets = match &given {
                    Some(given) => given.clone(),
                    None => {
                        let platform = caller.tokens.platform().ok_or_else(|| {
                            Error::Config("rollouts are for a third-party platform (WX_COMPONENT_APPID)".into())
                        })?;
                        let listed = platform.authorizers(&caller.client, deadline).await;
                        listed.map_err(|e| e.for_method(method))?.into_iter().collect()
                    }
                };
                if targets.is_empty() {
                    return Err(invalid("no targets: the platform has no authorised mini program".into()));
                }
                let list: Vec<&String> = targets.iter().collect();
                let chunks: Vec<&[&String]> = list.chunks(CHUNK).collect();
                let record = RolloutRecord {
                    event: template.clone(),
                    run: random_id(),
                    targets: targets.len(),
                    chunks: chunks.len(),
                    created: now_ms(),
                };
                // Under this start's own run: a start racing this one writes its chunks elsewhere.
                for (index, chunk) in chunks.iter().enumerate() {
                    let text = serde_json::to_string(chunk).unwrap_or_default();
                    self.write(&keys.chunk(&record.run, index), None, &text, deadline).await.map_err(store)?;
                }
                let text = serde_json::to_string(&record).unwrap_or_default();
                if self.write(keys.rollout(), None, &text, deadline).await.map_err(store)? {
                    (record, targets)
                } else {
                    // Another start of the same id recorded it first: its rollout stands, if it is the same.
                    let record = self.rollout(keys, deadline).await.map_err(store)?;
                    let record =
                        record.ok_or_else(|| store(StoreFailure("the rollout's record came and went".into())))?;
                    let targets = self.targets(keys, &record, deadline).await.map_err(store)?;
                    same(&record, &targets)?;
                    (record, targets)
                }
            }
        };

        let list: Vec<&String> = targets.iter().collect();
        let records = self.records(keys, &record.run, &list, deadline).await.map_err(store)?;
        let now = now_ms();
        // Settled, or an attempt at it right now: its message is in hand. Anything else is sent (a target whose
        // message is still queued gets a second one, which its record makes harmless).
        let settled = |appid: &String| records.get(appid).is_some_and(|r| r.settled(now) || r.leased(now));
        let done = targets.iter().filter(|t| settled(t)).count();
        // A start that ran out of time goes on from where it stopped (`after` = its answer's `next`).
        let after = event.get("after").and_then(Value::as_str).unwrap_or_default();
        let to_send: Vec<&String> = targets.iter().filter(|t| t.as_str() > after && !settled(t)).collect();
        let bodies: Vec<String> = to_send
            .iter()
            .map(|target| {
                let mut event = template.clone();
                event["authorizerAppid"] = json!(target);
                json!({ "rolloutId": keys.id(), "run": record.run, "event": event }).to_string()
            })
            .collect();
        let sends: Vec<_> = bodies.chunks(BATCH).map(|batch| send(queue, batch, deadline)).collect();
        // In order, so that what went out is a prefix of the targets and the next start can begin after it.
        let sends: Vec<(usize, Option<QueueFailure>)> = stream::iter(sends).buffered(SENDS_AT_ONCE).collect().await;
        let whole = sends.iter().take_while(|(unsent, _)| *unsent == 0).count();
        let sent_through = (whole * BATCH).min(to_send.len());
        let sent = bodies.len() - sends.iter().map(|(unsent, _)| unsent).sum::<usize>();
        let remaining = to_send.len() - sent_through;
        if let Some(failure) = sends.iter().find_map(|(_, failure)| failure.as_ref()) {
            if sent == 0 {
                return Err(Error::Rollout {
                    method,
                    errcode: sdk_codes::QUEUE_UNAVAILABLE,
                    detail: format!("the rollout queue took no message: {failure}; start again to send them"),
                });
            }
            tracing::warn!(error = %failure, remaining, "the rollout queue refused some messages; start again to send them");
        }
        let next = (remaining > 0 && sent_through > 0).then(|| to_send[sent_through - 1].clone());
        Ok(json!({
            "run": record.run,
            "targets": targets.len(),
            "done": done,
            "sent": sent,
            "remaining": remaining,
            "next": next.or_else(|| (remaining > 0).then(|| after.to_owned()).filter(|a| !a.is_empty())),
        }))
    }

    /// The rollout's counts by state and by errCode.
    async fn status(&self, keys: &Keys, deadline: Instant) -> Result<Value, StoreFailure> {
        let Some(record) = self.rollout(keys, deadline).await? else { return Ok(json!({})) };
        let targets = self.targets(keys, &record, deadline).await?;
        let list: Vec<&String> = targets.iter().collect();
        let records = self.records(keys, &record.run, &list, deadline).await?;
        let mut states: Map<String, Value> = STATES.iter().map(|s| (s.to_string(), json!(0))).collect();
        let mut err_codes: BTreeMap<i64, u64> = BTreeMap::new();
        let mut updated = record.created;
        for target in &targets {
            let state = match records.get(target) {
                None => "pending",
                Some(r) => {
                    updated = updated.max(r.updated);
                    if r.err_code != 0 {
                        *err_codes.entry(r.err_code).or_default() += 1;
                    }
                    r.state.name()
                }
            };
            if let Some(count) = states.get_mut(state) {
                *count = json!(count.as_u64().unwrap_or_default() + 1);
            }
        }
        let err_codes: Map<String, Value> =
            err_codes.into_iter().map(|(code, n)| (code.to_string(), json!(n))).collect();
        Ok(json!({
            "run": record.run,
            "event": record.event,
            "targets": targets.len(),
            "states": states,
            "errCodes": err_codes,
            "created": record.created,
            "updated": updated,
        }))
    }

    /// One page of every target's outcome, in appid order, after `after`: only the page's records are read.
    async fn report(
        &self,
        keys: &Keys,
        after: Option<String>,
        limit: usize,
        deadline: Instant,
    ) -> Result<Value, StoreFailure> {
        let Some(record) = self.rollout(keys, deadline).await? else { return Ok(json!({})) };
        let targets = self.targets(keys, &record, deadline).await?;
        let from = after.as_ref().map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let mut page: Vec<&String> =
            targets.range::<String, _>((from, std::ops::Bound::Unbounded)).take(limit + 1).collect();
        let next = (page.len() > limit).then(|| page[limit - 1].clone());
        page.truncate(limit);
        let records = self.records(keys, &record.run, &page, deadline).await?;
        let listed: Vec<Value> = page
            .iter()
            .map(|target| match records.get(*target) {
                Some(r) => r.reported(target),
                None => json!({ "authorizerAppid": target, "state": "pending", "errCode": 0, "errMsg": "",
                                "attempts": 0, "updated": Value::Null, "exhausted": false }),
            })
            .collect();
        Ok(json!({ "targets": listed, "next": next }))
    }

    async fn rollout(&self, keys: &Keys, deadline: Instant) -> Result<Option<RolloutRecord>, StoreFailure> {
        let Some(text) = self.read(keys.rollout(), deadline).await? else { return Ok(None) };
        serde_json::from_str(&text).map(Some).map_err(|_| StoreFailure(format!("{} does not read", keys.rollout())))
    }

    /// The rollout's targets, from its chunks.
    async fn targets(
        &self,
        keys: &Keys,
        record: &RolloutRecord,
        deadline: Instant,
    ) -> Result<BTreeSet<String>, StoreFailure> {
        let chunk_keys: Vec<String> = (0..record.chunks).map(|index| keys.chunk(&record.run, index)).collect();
        let chunks = super::stored(deadline, self.durable.get_many(&chunk_keys)).await?;
        let mut targets = BTreeSet::new();
        for (key, text) in chunk_keys.iter().zip(chunks) {
            let text = text.ok_or_else(|| StoreFailure(format!("{key} is missing")))?;
            let chunk: Vec<String> =
                serde_json::from_str(&text).map_err(|_| StoreFailure(format!("{key} does not read")))?;
            targets.extend(chunk);
        }
        Ok(targets)
    }

    /// The records of `targets` (of run `run`), by appid: read together, a few calls for thousands.
    async fn records(
        &self,
        keys: &Keys,
        run: &str,
        targets: &[&String],
        deadline: Instant,
    ) -> Result<HashMap<String, TargetRecord>, StoreFailure> {
        let target_keys: Vec<String> = targets.iter().map(|target| keys.target(run, target)).collect();
        let values = super::stored(deadline, self.durable.get_many(&target_keys)).await?;
        Ok(targets
            .iter()
            .zip(values)
            .filter_map(|(target, raw)| Some(((*target).clone(), TargetRecord::parse(&raw?)?)))
            .collect())
    }
}

/// Sends one batch if there is time: how many it left unsent, and why if SQS failed. Entries SQS refused are sent
/// once more, then left for the next start.
async fn send(queue: &Queue, batch: &[String], deadline: Instant) -> (usize, Option<QueueFailure>) {
    if time_left(deadline).is_none_or(|left| left < SEND_TIME) {
        return (batch.len(), None);
    }
    let unsent = match queue.send_batch(batch).await {
        Ok(unsent) if unsent.is_empty() => return (0, None),
        Ok(unsent) => unsent,
        Err(failure) => return (batch.len(), Some(failure)),
    };
    let again: Vec<String> = unsent.iter().filter_map(|&i| batch.get(i).cloned()).collect();
    if time_left(deadline).is_none_or(|left| left < SEND_TIME) {
        return (again.len(), None);
    }
    match queue.send_batch(&again).await {
        Ok(still) => (still.len(), None),
        Err(failure) => (again.len(), Some(failure)),
    }
}

/// The event every target runs: a valid cloud call (checked with a stand-in target), without `authorizerAppid`.
fn template(event: &Value) -> Result<Value, String> {
    let template = event.get("event").filter(|e| e.is_object()).ok_or("missing field event: the cloud call to run")?;
    if template.get("authorizerAppid").is_some() || template.get("authorizer_appid").is_some() {
        return Err("field event must not name authorizerAppid: each target's is added to it".into());
    }
    let mut probe = template.clone();
    probe["authorizerAppid"] = json!("wx0000000000000000");
    Request::from_event(&probe).map_err(|e| format!("field event: {}", e.err_msg()))?;
    Ok(template.clone())
}

/// `targets`, when given: appids, each once.
fn given_targets(event: &Value) -> Result<Option<BTreeSet<String>>, String> {
    let Some(targets) = event.get("targets") else { return Ok(None) };
    let list = targets.as_array().ok_or("field targets must be an array of appids")?;
    if list.is_empty() || list.len() > MAX_TARGETS {
        return Err(format!("field targets must hold 1 to {MAX_TARGETS} appids"));
    }
    let mut set = BTreeSet::new();
    for target in list {
        match target.as_str() {
            Some(appid) if is_appid(appid) => set.insert(appid.to_owned()),
            _ => return Err(format!("field targets holds {target}, which is not an appid")),
        };
    }
    Ok(Some(set))
}

/// `report`'s `after` and `limit`.
fn page(event: &Value) -> Result<(Option<String>, usize), String> {
    let after = match event.get("after") {
        None | Some(Value::Null) => None,
        Some(Value::String(after)) => Some(after.clone()),
        Some(_) => return Err("field after must be an appid".into()),
    };
    let limit = match event.get("limit") {
        None => REPORT_PAGE.0,
        Some(limit) => limit
            .as_u64()
            .filter(|l| (1..=REPORT_PAGE.1 as u64).contains(l))
            .ok_or(format!("field limit must be from 1 to {}", REPORT_PAGE.1))? as usize,
    };
    Ok((after, limit))
}
