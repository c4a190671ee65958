//! CloudWatch Embedded Metric Format: the metrics of one invocation, written into that invocation's one log line
//! (CloudWatch Logs reads EMF from any JSON line and turns it into metrics, namespace `WxPluginManager`, dimension
//! `Action`, without an API call). `WX_METRICS=off` leaves them out.

/// What one invocation took from the token provider and from WeChat.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Access tokens fetched from WeChat's token endpoint (`TokenFetches`).
    pub token_fetches: u32,
    /// Access tokens taken without asking WeChat: a cache's, a peer's fresh fetch, or the fixed one (`TokenCacheHits`).
    pub token_cache_hits: u32,
    /// Plugin-endpoint calls (retries included).
    pub wechat_calls: u32,
}

/// The metric declaration: the same for every invocation, so written as it stands.
const DECLARATION: &str = concat!(
    r#""CloudWatchMetrics":[{"Namespace":"WxPluginManager","Dimensions":[["Action"]],"Metrics":["#,
    r#"{"Name":"Latency","Unit":"Milliseconds"},{"Name":"Errors","Unit":"Count"},"#,
    r#"{"Name":"TokenFetches","Unit":"Count"},{"Name":"TokenCacheHits","Unit":"Count"},"#,
    r#"{"Name":"WeChatCalls","Unit":"Count"}]}]"#
);

/// One invocation's figures.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// The `Action` dimension: the operation, `invalid`, `refused` or `push_*`.
    pub dimension: &'a str,
    /// The errCode answered; anything but 0 counts one in `Errors`.
    pub err_code: i64,
    /// Milliseconds from the invocation's start to its answer (`Latency`).
    pub latency_ms: f64,
    /// The tokens and WeChat calls it took.
    pub usage: Usage,
    /// Lambda's request id, so that a metric's data point leads back to its log line.
    pub request_id: &'a str,
    /// The rollout a queue record belongs to: a property (`RolloutId`), not a dimension, so that a rollout of
    /// thousands adds no metric series.
    pub rollout_id: Option<&'a str>,
}

impl Sample<'_> {
    /// Writes the EMF members (`"_aws":{…},"Action":…,…`) into a JSON object being written; `now_ms` is the
    /// record's time in unix milliseconds.
    pub fn write_members(&self, out: &mut Vec<u8>, now_ms: u64) {
        out.extend_from_slice(br#""_aws":{"Timestamp":"#);
        write_json(out, &now_ms);
        out.push(b',');
        out.extend_from_slice(DECLARATION.as_bytes());
        out.extend_from_slice(br#"},"Action":"#);
        write_json(out, self.dimension);
        out.extend_from_slice(br#","Latency":"#);
        write_json(out, &to_the_microsecond(self.latency_ms));
        let usage = &self.usage;
        let counts = [
            (&br#","Errors":"#[..], u32::from(self.err_code != 0)),
            (br#","TokenFetches":"#, usage.token_fetches),
            (br#","TokenCacheHits":"#, usage.token_cache_hits),
            (br#","WeChatCalls":"#, usage.wechat_calls),
        ];
        for (name, count) in counts {
            out.extend_from_slice(name);
            write_json(out, &count);
        }
        out.extend_from_slice(br#","ErrCode":"#);
        write_json(out, &self.err_code);
        out.extend_from_slice(br#","RequestId":"#);
        write_json(out, self.request_id);
        if let Some(rollout_id) = self.rollout_id {
            out.extend_from_slice(br#","RolloutId":"#);
            write_json(out, rollout_id);
        }
    }
}

/// Milliseconds rounded to the microsecond, as the log line and the metric print them. A duration in milliseconds is
/// rarely a binary fraction, and JSON would otherwise print its nearest double in full (`0.07339999999999999`); a
/// whole number of microseconds divided by 1,000 prints as its decimal (`0.073`).
pub(crate) fn to_the_microsecond(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Writes `value` as JSON (strings escaped); into a `Vec`, that cannot fail.
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn record(sample: &Sample, now_ms: u64) -> Value {
        let mut out = b"{".to_vec();
        sample.write_members(&mut out, now_ms);
        out.push(b'}');
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn a_record_declares_every_metric_it_carries() {
        let usage = Usage { token_fetches: 1, token_cache_hits: 1, wechat_calls: 2 };
        let sample = Sample {
            dimension: "list",
            err_code: 40001,
            latency_ms: 12.3456,
            usage,
            request_id: "rid",
            rollout_id: None,
        };
        let line = record(&sample, 1_763_800_000_000);
        let declared = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "WxPluginManager");
        assert_eq!(declared["Dimensions"], json!([["Action"]]));
        for metric in declared["Metrics"].as_array().unwrap() {
            assert!(line[metric["Name"].as_str().unwrap()].is_number(), "{metric} has a value");
        }
        assert_eq!(line["Action"], "list");
        assert_eq!((line["Errors"].as_u64(), line["ErrCode"].as_i64()), (Some(1), Some(40001)));
        assert_eq!(line["Latency"], 12.346);
        assert_eq!(line["_aws"]["Timestamp"], 1_763_800_000_000u64);
        assert_eq!((line["TokenFetches"].as_u64(), line["WeChatCalls"].as_u64()), (Some(1), Some(2)));
    }

    #[test]
    fn whatever_an_event_names_the_record_stays_json() {
        let usage = Usage::default();
        let sample = Sample {
            dimension: "a\"b\\c\n",
            err_code: 0,
            latency_ms: 0.0,
            usage,
            request_id: "r\u{1}",
            rollout_id: Some("r\"1"),
        };
        let line = record(&sample, 0);
        assert_eq!((line["Action"].as_str(), line["RequestId"].as_str()), (Some("a\"b\\c\n"), Some("r\u{1}")));
        assert_eq!(line["RolloutId"], "r\"1");
        assert!(!line["_aws"].to_string().contains("RolloutId"), "a property, never a dimension or a metric");
    }
}
