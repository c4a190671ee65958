//! The fault suite: the real binary serving 8 invocations at once while the emulator misbehaves in every scripted way
//! (busy, quotas, 5xx, dropped connections, slow answers past the deadline, non-JSON bodies, JSON as text/plain,
//! token-endpoint failures, invalidation storms). Invariants: every invocation is answered before its deadline, each
//! makes a bounded number of WeChat calls, no secret or token is ever printed, and the process never dies.

use std::time::{Duration, Instant};

use crate::support::runtime_api::Outcome;
use crate::support::setup::Setup;
use serde_json::{json, Value};
use wechat_emulator::{Fault, DEMO_APPID, DEMO_SECRET};

const ROUNDS: u64 = 16;
const PER_ROUND: usize = 24;
const DEADLINE: Duration = Duration::from_millis(1_500);
/// The Runtime API's own turnaround after the function answers.
const SLACK: Duration = Duration::from_millis(300);

/// A small deterministic generator, so a failing round can be replayed.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

fn fault(rng: &mut Xorshift) -> Fault {
    match rng.next(10) {
        0 => Fault::Errcode { errcode: -1, errmsg: None },
        1 => Fault::Errcode { errcode: [45009, 45011][rng.next(2) as usize], errmsg: None },
        2 => Fault::Errcode { errcode: 40001, errmsg: None },
        3 => Fault::Status { status: [500, 502, 503][rng.next(3) as usize] },
        4 => Fault::Drop,
        5 => Fault::Delay { ms: 100 + rng.next(400) },
        6 => Fault::Delay { ms: 2_000 },
        7 => Fault::NonJson { body: None },
        8 => Fault::TextPlain,
        _ => Fault::Redirect { status: 302, location: "http://127.0.0.1:9/elsewhere".into() },
    }
}

fn event(rng: &mut Xorshift) -> Value {
    match rng.next(6) {
        0 | 1 => json!({"action":"list"}),
        2 => json!({"action":"dev_apply_list","page":1,"num":5}),
        3 => json!({"action":"apply","pluginAppid":"wxpluginshop0001"}),
        4 => json!({"action":"unbind","pluginAppid":"wxpluginshop0001"}),
        _ => json!({"action":"unbind","pluginAppId":"typo"}),
    }
}

#[test]
fn under_concurrent_faults_every_invocation_is_answered_in_time_within_bounded_calls() {
    let s = Setup::new(&[("AWS_LAMBDA_MAX_CONCURRENCY", "8"), ("RUST_LOG", "debug")]);
    assert!(s.api.wait_for_polls(8, Duration::from_secs(10)));
    let mut rng = Xorshift(0x5eed_cafe_f00d_d00d);
    let mut answered = 0;
    for round in 0..ROUNDS {
        for _ in 0..rng.next(6) + 1 {
            let path = ["/wxa/plugin", "/wxa/devplugin", "/cgi-bin/stable_token", "*"][rng.next(4) as usize];
            s.emu.script(path, fault(&mut rng), 1 + rng.next(4) as usize);
        }
        if rng.next(3) == 0 {
            // An invalidation storm: every in-flight call meets 40001 with the same token.
            s.emu.invalidate_tokens(DEMO_APPID);
        }
        let events: Vec<Value> = (0..PER_ROUND).map(|_| event(&mut rng)).collect();
        let started = Instant::now();
        let outcomes = s.api.invoke_many(&events, DEADLINE);
        let took = started.elapsed();
        assert!(took <= DEADLINE + SLACK, "round {round}: answered after the deadline ({took:?})");
        for (i, outcome) in outcomes.iter().enumerate() {
            match outcome {
                Outcome::Response(r) => assert_eq!(r["errCode"], 0, "round {round} #{i}"),
                Outcome::Error { error_type, .. } => assert!(
                    ["WxApiError", "InvalidEvent", "TokenError", "UpstreamError"].contains(&error_type.as_str()),
                    "round {round} #{i}: {error_type}"
                ),
                Outcome::NoAnswer => panic!("round {round} #{i}: no answer\n{}", s.function.output()),
            }
        }
        answered += outcomes.len();
        s.emu.clear_faults();
    }

    // The process is alive and well.
    assert_eq!(s.succeeds(json!({"action":"list"}))["errCode"], 0);
    answered += 1;

    // Bounded calls: one metrics record per invocation, each within the retry rules.
    assert!(s.function.wait_for_output("\"Action\":\"list\"", Duration::from_secs(5)));
    let output = s.function.output();
    let records: Vec<Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert_eq!(records.len(), answered);
    for r in &records {
        // At most: the first call, one after a token refresh, one after -1 (reads only).
        assert!(r["WeChatCalls"].as_u64().unwrap() <= 3, "{r}");
        assert!(r["TokenFetches"].as_u64().unwrap() <= 2, "{r}");
    }
    let plugin_calls = s.emu.count("/wxa/plugin") + s.emu.count("/wxa/devplugin");
    assert!(plugin_calls <= 3 * answered as u64, "{plugin_calls} WeChat calls for {answered} invocations");

    // No secret, no token, in anything printed or answered.
    let mut secrets = s.emu.issued_tokens();
    secrets.push(DEMO_SECRET.to_owned());
    for secret in &secrets {
        assert!(!output.contains(secret.as_str()), "a secret or token was printed");
    }
}
