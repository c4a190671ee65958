//! CloudWatch Embedded Metric Format: one JSON line per invocation, which CloudWatch Logs turns into metrics
//! (namespace `WxPluginManager`, dimension `Action`) without any API call. `WX_METRICS=off` turns it off.

use serde_json::json;

use crate::Usage;

pub const NAMESPACE: &str = "WxPluginManager";

/// The record for one invocation.
pub fn record(action: &str, err_code: i64, latency_ms: f64, usage: &Usage, request_id: &str, now_ms: u64) -> String {
    json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Action"]],
                "Metrics": [
                    { "Name": "Latency", "Unit": "Milliseconds" },
                    { "Name": "Errors", "Unit": "Count" },
                    { "Name": "TokenFetches", "Unit": "Count" },
                    { "Name": "TokenCacheHits", "Unit": "Count" },
                    { "Name": "WeChatCalls", "Unit": "Count" },
                ],
            }],
        },
        "Action": action,
        "Latency": (latency_ms * 1000.0).round() / 1000.0,
        "Errors": u32::from(err_code != 0),
        "TokenFetches": usage.token_fetches,
        "TokenCacheHits": usage.token_cache_hits,
        "WeChatCalls": usage.wechat_calls,
        // Properties, searchable in Logs Insights but not metrics.
        "ErrCode": err_code,
        "RequestId": request_id,
    })
    .to_string()
}

pub fn emit(action: &str, err_code: i64, latency_ms: f64, usage: &Usage, request_id: &str) {
    crate::logging::write_line(record(action, err_code, latency_ms, usage, request_id, crate::token::now_ms()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_record_declares_every_metric_it_carries() {
        let usage = Usage { token_fetches: 1, token_cache_hits: 1, wechat_calls: 2 };
        let line: Value =
            serde_json::from_str(&record("list", 40001, 12.3456, &usage, "rid", 1_763_800_000_000)).unwrap();
        let declared = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], NAMESPACE);
        assert_eq!(declared["Dimensions"], json!([["Action"]]));
        for metric in declared["Metrics"].as_array().unwrap() {
            assert!(line[metric["Name"].as_str().unwrap()].is_number(), "{metric} has a value");
        }
        assert_eq!(line["Action"], "list");
        assert_eq!((line["Errors"].as_u64(), line["ErrCode"].as_i64()), (Some(1), Some(40001)));
        assert_eq!(line["Latency"], 12.346);
        assert_eq!(line["_aws"]["Timestamp"], 1_763_800_000_000u64);
    }
}
