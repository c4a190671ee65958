//! The request bodies, one function an operation: what the unit tests check and the store sends.

use serde_json::{json, Value};

use super::item::{n, s};
use super::{lock_key, REFRESH_MARGIN};

pub fn get(table: &str, key: &str) -> Value {
    json!({ "TableName": table, "Key": { "pk": s(key) }, "ConsistentRead": true })
}

pub fn save(table: &str, key: &str, token: &str, expires_at_ms: u64, due_ms: u64) -> Value {
    json!({
        "TableName": table,
        "Item": { "pk": s(key), "v": s(token), "exp_ms": n(expires_at_ms), "ttl": n(due_ms.div_ceil(1000)) },
    })
}

/// Deletes the token only while it is `value` and not yet due (a due one is absent already, as in Redis).
pub fn remove_if(table: &str, key: &str, value: &str, now_ms: u64) -> Value {
    json!({
        "TableName": table,
        "Key": { "pk": s(key) },
        "ConditionExpression": "v = :v AND exp_ms > :live",
        "ExpressionAttributeValues": { ":v": s(value), ":live": n(now_ms + REFRESH_MARGIN.as_millis() as u64) },
    })
}

/// Takes the lease if there is none, or the one there has ended.
pub fn lock(table: &str, key: &str, holder: &str, now_ms: u64, until_ms: u64) -> Value {
    json!({
        "TableName": table,
        "Item": { "pk": s(&lock_key(key)), "holder": s(holder), "until_ms": n(until_ms), "ttl": n(until_ms.div_ceil(1000)) },
        "ConditionExpression": "attribute_not_exists(pk) OR until_ms <= :now",
        "ExpressionAttributeValues": { ":now": n(now_ms) },
    })
}

pub fn unlock(table: &str, key: &str, holder: &str) -> Value {
    json!({
        "TableName": table,
        "Key": { "pk": s(&lock_key(key)) },
        "ConditionExpression": "holder = :h",
        "ExpressionAttributeValues": { ":h": s(holder) },
    })
}

/// A durable value: `v` alone, no `ttl`.
pub fn swap(table: &str, key: &str, expected: Option<&str>, value: &str) -> Value {
    let mut body = json!({ "TableName": table, "Item": { "pk": s(key), "v": s(value) } });
    match expected {
        None => body["ConditionExpression"] = "attribute_not_exists(pk)".into(),
        Some(expected) => {
            body["ConditionExpression"] = "v = :e".into();
            body["ExpressionAttributeValues"] = json!({ ":e": s(expected) });
        }
    }
    body
}

/// A value that DynamoDB's TTL takes away at `until_s` (unix seconds), which every read checks too: where none is
/// expected, an item past its time counts as absent.
pub fn swap_expiring(table: &str, key: &str, expected: Option<&str>, value: &str, now_s: u64, until_s: u64) -> Value {
    let mut body = json!({ "TableName": table, "Item": { "pk": s(key), "v": s(value), "ttl": n(until_s) } });
    match expected {
        None => {
            body["ConditionExpression"] = "attribute_not_exists(pk) OR #ttl <= :now".into();
            body["ExpressionAttributeNames"] = json!({ "#ttl": "ttl" });
            body["ExpressionAttributeValues"] = json!({ ":now": n(now_s) });
        }
        Some(expected) => {
            body["ConditionExpression"] = "v = :e".into();
            body["ExpressionAttributeValues"] = json!({ ":e": s(expected) });
        }
    }
    body
}

pub fn delete_if(table: &str, key: &str, expected: &str) -> Value {
    json!({
        "TableName": table,
        "Key": { "pk": s(key) },
        "ConditionExpression": "v = :e",
        "ExpressionAttributeValues": { ":e": s(expected) },
    })
}

/// The items of `keys` (at most 100), each with its value and expiry, read consistently.
pub fn batch_get(table: &str, keys: &[String]) -> Value {
    let keys: Vec<Value> = keys.iter().map(|key| json!({ "pk": s(key) })).collect();
    json!({ "RequestItems": { table: {
        "Keys": keys,
        "ConsistentRead": true,
        "ProjectionExpression": "pk, v, #ttl",
        "ExpressionAttributeNames": { "#ttl": "ttl" },
    } } })
}

/// One page of the keys starting with `prefix`, after `start` (the previous page's `LastEvaluatedKey`).
pub fn scan(table: &str, prefix: &str, start: Option<&Value>) -> Value {
    let mut body = json!({ "TableName": table, "ConsistentRead": true, "ProjectionExpression": "pk" });
    if !prefix.is_empty() {
        body["FilterExpression"] = "begins_with(pk, :p)".into();
        body["ExpressionAttributeValues"] = json!({ ":p": s(prefix) });
    }
    if let Some(start) = start {
        body["ExclusiveStartKey"] = start.clone();
    }
    body
}
