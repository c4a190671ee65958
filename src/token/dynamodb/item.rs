//! DynamoDB's typed attributes, as our items use them: `pk` (the key), `v` (the value), `exp_ms` (a token's expiry),
//! `ttl` (DynamoDB's own expiry, in seconds).

use serde_json::{json, Value};

use crate::token::{CachedToken, REFRESH_MARGIN};

/// `{"S": s}`.
pub(super) fn s(value: &str) -> Value {
    json!({ "S": value })
}

/// `{"N": "n"}`.
pub(super) fn n(value: u64) -> Value {
    json!({ "N": value.to_string() })
}

/// A string attribute of an item.
pub(super) fn s_of<'a>(item: &'a Value, name: &str) -> Option<&'a str> {
    item.get(name)?.get("S")?.as_str()
}

/// A number attribute of an item.
pub(super) fn n_of(item: &Value, name: &str) -> Option<u64> {
    item.get(name)?.get("N")?.as_str()?.parse().ok()
}

/// The token an item holds, if it is not yet due for refresh at `now_ms`.
pub(super) fn live_token(item: &Value, now_ms: u64) -> Option<CachedToken> {
    let expires_at_ms = n_of(item, "exp_ms")?;
    let due_ms = expires_at_ms.saturating_sub(REFRESH_MARGIN.as_millis() as u64);
    let ttl_ms = n_of(item, "ttl").map_or(u64::MAX, |ttl| ttl.saturating_mul(1000));
    if now_ms >= due_ms || now_ms >= ttl_ms {
        return None;
    }
    Some(CachedToken { value: s_of(item, "v")?.to_owned().into(), expires_at_ms })
}

/// A durable value, unless it is past its `ttl` at `now_ms` (DynamoDB removes expired items late).
pub(super) fn live_value(item: &Value, now_ms: u64) -> Option<&str> {
    if n_of(item, "ttl").is_some_and(|ttl| ttl.saturating_mul(1000) <= now_ms) {
        return None;
    }
    s_of(item, "v")
}

/// The items of one scan page, and where the next one starts.
pub(super) fn scan_items(answer: &Value) -> (&[Value], Option<Value>) {
    let items = answer.get("Items").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let next = answer.get("LastEvaluatedKey").filter(|k| k.as_object().is_some_and(|k| !k.is_empty())).cloned();
    (items, next)
}

pub(super) fn item(answer: Value) -> Option<Value> {
    match answer {
        Value::Object(mut answer) => {
            answer.remove("Item").filter(|item| item.as_object().is_some_and(|i| !i.is_empty()))
        }
        _ => None,
    }
}
