//! Faults drawn at rates on the plugin endpoints: their shares, their determinism, and what each leaves of the change.

use std::time::Duration;

use serde_json::{json, Value};
use wechat_emulator::{Emulator, Fault, FaultRates, DEMO_APPID, DEMO_PLUGIN};

use super::{apply, fresh_program, start};
use crate::{assert_code, call, client, list_status, post, stable};

/// What a plugin call came to: an HTTP status other than 200, WeChat's errcode, or no answer at all.
#[derive(Debug, PartialEq)]
enum Outcome {
    Status(u16),
    Errcode(i64),
    NoAnswer,
}

async fn outcome(emu: &Emulator, token: &str, body: &Value, deadline: Duration) -> Outcome {
    let url = format!("{}/wxa/plugin?access_token={token}", emu.base_url());
    outcome_at(&impatient(deadline), &url, body).await
}

fn impatient(deadline: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(deadline).build().unwrap()
}

async fn outcome_at(client: &reqwest::Client, url: &str, body: &Value) -> Outcome {
    match client.post(url).body(body.to_string()).send().await {
        Err(_) => Outcome::NoAnswer,
        Ok(reply) if reply.status() != 200 => Outcome::Status(reply.status().as_u16()),
        Ok(reply) => Outcome::Errcode(reply.json::<Value>().await.unwrap()["errcode"].as_i64().unwrap()),
    }
}

/// `calls` plugin `list` calls of a generated program, eight at a time (the draws follow the order calls arrive
/// in, whatever their concurrency).
async fn lists(emu: &Emulator, calls: usize) -> Vec<Outcome> {
    let token = emu.authorizer_token(&super::generated(emu)[0]);
    let url = format!("{}/wxa/plugin?access_token={token}", emu.base_url());
    let client = impatient(Duration::from_secs(5));
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (client, url) = (client.clone(), url.clone());
        workers.spawn(async move {
            let mut outcomes = Vec::new();
            for _ in (worker..calls).step_by(8) {
                outcomes.push(outcome_at(&client, &url, &json!({"action":"list"})).await);
            }
            outcomes
        });
    }
    workers.join_all().await.into_iter().flatten().collect()
}

/// The faults the plugin calls met, in the order they arrived.
fn drawn(emu: &Emulator) -> Vec<Option<Fault>> {
    emu.requests().into_iter().filter(|r| r.path == "/wxa/plugin").map(|r| r.fault).collect()
}

fn rates(seed: u64) -> FaultRates {
    // Held 0 ms: the connection closes as soon as the change is made, so 2,000 calls take no time.
    FaultRates { status_5xx: 0.02, timeout_after_apply: 0.02, busy: 0.01, seed, timeout_ms: 0 }
}

#[tokio::test]
async fn faults_come_at_their_rates_and_the_same_seed_draws_the_same_ones() {
    let emu = start(10, 5);
    emu.set_fault_rates(rates(42));
    let outcomes = lists(&emu, 2_000).await;
    let count = |keep: fn(&Outcome) -> bool| outcomes.iter().filter(|o| keep(o)).count();
    let failed = count(|o| matches!(o, Outcome::Status(500 | 502 | 503 | 504)));
    let (unanswered, busy) = (count(|o| *o == Outcome::NoAnswer), count(|o| *o == Outcome::Errcode(-1)));
    // 40, 40 and 20 expected; four standard deviations either way.
    for (n, expected, spread) in [(failed, 40, 25), (unanswered, 40, 25), (busy, 20, 18)] {
        assert!(n.abs_diff(expected) <= spread, "{n} where about {expected} were drawn");
    }
    assert_eq!(count(|o| *o == Outcome::Errcode(0)), 2_000 - failed - unanswered - busy);
    let first = drawn(&emu);
    assert_eq!(first.len(), 2_000, "a closed connection is not retried behind the client's back");
    let timeouts = first.iter().filter(|f| matches!(f, Some(Fault::TimeoutAfterApply { ms: 0 }))).count();
    assert_eq!(timeouts, unanswered);

    let (again, other) = (start(10, 5), start(10, 5));
    again.set_fault_rates(rates(42));
    other.set_fault_rates(rates(43));
    lists(&again, 300).await;
    lists(&other, 300).await;
    assert_eq!(drawn(&again), first[..300]);
    assert_ne!(drawn(&other), first[..300]);
}

/// The demo plugin's status in `appid`'s `list`, if it is there.
async fn listed(emu: &Emulator, appid: &str) -> Option<u64> {
    let token = emu.authorizer_token(appid);
    list_status(&call(emu, "/wxa/plugin", &token, json!({"action":"list"})).await, DEMO_PLUGIN)
}

#[tokio::test]
async fn a_timed_out_call_made_its_change_and_busy_or_5xx_ones_did_not() {
    let emu = start(100, 9);
    let (timed_out, busy, failed) = (fresh_program(&emu, 0), fresh_program(&emu, 1), fresh_program(&emu, 2));
    let only = |rates: FaultRates| emu.set_fault_rates(FaultRates { timeout_ms: 5_000, ..rates });
    only(FaultRates { timeout_after_apply: 1.0, ..FaultRates::default() });
    let token = emu.authorizer_token(&timed_out);
    let deadline = Duration::from_millis(300);
    assert_eq!(outcome(&emu, &token, &apply(), deadline).await, Outcome::NoAnswer);
    let url = format!("{}/wxa/plugin?access_token={token}", emu.base_url());
    assert!(impatient(deadline).post(url).body(apply().to_string()).send().await.unwrap_err().is_timeout());
    only(FaultRates { busy: 1.0, ..FaultRates::default() });
    assert_eq!(outcome(&emu, &emu.authorizer_token(&busy), &apply(), deadline).await, Outcome::Errcode(-1));
    only(FaultRates { status_5xx: 1.0, ..FaultRates::default() });
    assert!(matches!(outcome(&emu, &emu.authorizer_token(&failed), &apply(), deadline).await, Outcome::Status(_)));
    emu.clear_fault_rates();

    assert_eq!(listed(&emu, &timed_out).await, Some(1), "the timed-out apply was made");
    assert_eq!((listed(&emu, &busy).await, listed(&emu, &failed).await), (None, None));
    assert_eq!(emu.changes(&timed_out).applied, 1, "the second apply met 89237: no change twice");
    assert_eq!(emu.all_changes().len(), 1);
    assert_code(&call(&emu, "/wxa/plugin", &token, apply()).await, 89237);
}

#[tokio::test]
async fn fault_rates_are_set_and_cleared_over_the_control_endpoint() {
    let emu = start(3, 1);
    let base = emu.base_url().to_owned();
    let set = post(&format!("{base}/__emulator/fault_rates"), json!({"busy": 1.0, "seed": 4})).await;
    assert_eq!((set["busy"].as_f64(), set["timeout_ms"].as_u64()), (Some(1.0), Some(30_000)));
    let token = emu.authorizer_token(&super::generated(&emu)[0]);
    assert_code(&call(&emu, "/wxa/plugin", &token, json!({"action":"list"})).await, -1);
    assert!(stable(&emu, DEMO_APPID, false).await["access_token"].is_string(), "token endpoints draw no faults");
    let refused = client().post(format!("{base}/__emulator/fault_rates")).body(r#"{"busy":0.7,"status_5xx":0.7}"#);
    let refused = refused.send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("at most 1"));
    assert!(client().delete(format!("{base}/__emulator/fault_rates")).send().await.unwrap().status().is_success());
    assert_code(&call(&emu, "/wxa/plugin", &token, json!({"action":"list"})).await, 0);
}
