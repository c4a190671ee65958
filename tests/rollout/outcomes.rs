//! What a rollout does with what is not a plain success: a poison message, a revoked authorisation, a store that
//! stops answering, a target every attempt fails for (the dead-letter queue, and its redrive), a second start.

use std::time::Duration;

use serde_json::{json, Value};
use wechat_emulator::{FaultRates, DEMO_PLUGIN};

use super::rig::{generated, Rig, COMPONENT};
use crate::support::shared_store::SharedStore;

fn apply() -> Value {
    json!({"action":"apply","pluginAppid":DEMO_PLUGIN})
}

/// Programs of the rig's world that have not applied for the demo plugin (an apply succeeds for them).
fn fresh(rig: &Rig, programs: usize) -> Vec<String> {
    let world = rig.emu.world();
    let applied = |p: &str| world.applications.iter().any(|a| a.applicant == p && a.plugin == DEMO_PLUGIN);
    generated(&rig.emu, programs).into_iter().filter(|p| !applied(p)).collect()
}

#[test]
fn a_poison_message_is_final_and_not_retried_and_a_revoked_program_keeps_wechats_code() {
    let rig = Rig::new(12, 31, SharedStore::redis(), 3);
    let targets = fresh(&rig, 12);
    let (revoked, rest) = targets.split_first().unwrap();
    // The function has served this program before (it holds its refresh token and a token)...
    let listed = rig.control(json!({"action":"list","authorizerAppid":revoked})).response();
    assert_eq!(listed["errCode"], 0, "{listed}");
    let run = rig.start("edges", apply(), Some(&targets))["run"].clone();
    // ...which withdraws after the start, before its message is taken: its token dies, its refresh token answers 61003.
    rig.emu.revoke(COMPONENT, revoked);
    let not_json = rig.sqs.send_message(&rig.queue.url, "{not json");
    // An event that does not parse, for a program outside the rollout's targets (no other message shares its slot).
    let stranger = "wx00000000000000ba";
    let bad_event =
        json!({"rolloutId":"edges","run":run,"event":{"action":"explode","authorizerAppid":stranger}}).to_string();
    let bad = rig.sqs.send_message(&rig.queue.url, &bad_event);
    let esm = rig.mapping(2);
    let status = rig.wait_settled("edges", &esm, Duration::from_secs(120));
    let report = rig.report("edges");

    let delivered =
        |id: &str| esm.batches().iter().flat_map(|b| b.records.clone()).filter(|r| r.message_id == id).count();
    assert_eq!((delivered(&not_json), delivered(&bad)), (1, 1), "poison messages are taken once, not retried");
    assert!(rig.dead_letters().is_empty(), "nothing failed every attempt");
    let line = esm.output();
    assert!(line.contains("a rollout message that is not one of ours"), "the unreadable one is said");

    // The bad event's target has its final outcome recorded and said: InvalidEvent.
    let said = line.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|l| l["authorizer"] == stranger);
    let said = said.expect("the bad event's line");
    assert_eq!((said["rollout_state"].as_str(), said["err_code"].as_i64()), (Some("failed"), Some(-501007)), "{said}");
    assert_eq!((said["rollout_id"].as_str(), said["RolloutId"].as_str()), (Some("edges"), Some("edges")), "{said}");
    let revoked_outcome = &report[revoked];
    assert_eq!(revoked_outcome["state"], "failed", "{revoked_outcome}");
    assert_eq!(revoked_outcome["errCode"], 61003, "WeChat's code for a withdrawn authorisation: {revoked_outcome}");
    assert_eq!(revoked_outcome["attempts"], 1, "a business error is not retried: {revoked_outcome}");
    for target in rest {
        assert_eq!(report[target]["state"], "done", "{target}: {}", report[target]);
        assert_eq!(rig.emu.changes(target).applied, 1, "{target}");
    }
    let states = &status["states"];
    assert_eq!(states["failed"].as_u64().unwrap() + states["done"].as_u64().unwrap(), targets.len() as u64);
    rig.assert_no_secret_in(&(line + &rig.control.output()));
}

#[test]
fn with_the_store_unreachable_records_come_back_and_none_is_lost() {
    let mut rig = Rig::new(8, 32, SharedStore::redis(), 10);
    let targets = fresh(&rig, 8);
    rig.start("outage", apply(), Some(&targets));
    rig.store.kill();
    let esm = rig.mapping(1);
    assert!(
        esm.wait_until(Duration::from_secs(30), |s| s.failures_reported >= targets.len() as u64),
        "{:?}",
        esm.stats()
    );
    assert_eq!(esm.stats().deleted, 0, "nothing is deleted while its outcome cannot be recorded");
    assert!(targets.iter().all(|t| rig.emu.changes(t).applied == 0), "nothing is sent without the slot");
    // Back, but empty: the ticket must come again (the messages carry their events; the records start over).
    rig.store.restart();
    rig.push_ticket();
    assert!(
        esm.wait_until(Duration::from_secs(90), |s| s.deleted >= targets.len() as u64),
        "every message ends once the store is back: {:?}",
        esm.stats()
    );
    assert!(esm.wait_until_idle(Duration::from_secs(1), Duration::from_secs(30)));
    for target in &targets {
        assert_eq!(rig.emu.changes(target).applied, 1, "{target}: changed once, after the outage");
    }
    assert!(rig.dead_letters().is_empty());
    assert!(esm.output().contains(rig.store.unavailable_warning()), "the outage is said");
}

#[test]
fn targets_every_attempt_fails_for_end_in_the_dead_letter_queue_and_a_redrive_finishes_them() {
    let rig = Rig::new(6, 33, SharedStore::redis(), 2);
    let targets = fresh(&rig, 6);
    rig.emu.set_fault_rates(FaultRates { status_5xx: 1.0, ..FaultRates::default() });
    rig.start("dlq", apply(), Some(&targets));
    let esm = rig.mapping(2);
    let status = rig.wait_settled("dlq", &esm, Duration::from_secs(120));
    assert_eq!(status["states"]["failed"], targets.len(), "{status}");
    let report = rig.report("dlq");
    for target in &targets {
        let outcome = &report[target];
        assert_eq!((outcome["exhausted"].clone(), outcome["attempts"].clone()), (json!(true), json!(2)), "{outcome}");
        assert_eq!(outcome["errCode"], -501001, "the last failure, verbatim: {outcome}");
    }
    // The dead-letter queue holds exactly them: moved back (what `aws sqs start-message-move-task` does), they run.
    let dead = rig.sqs.drain_bodies(&rig.queue.dlq_url);
    let mut named: Vec<String> = dead
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap()["event"]["authorizerAppid"].to_string())
        .collect();
    named.sort();
    let mut expected: Vec<String> = targets.iter().map(|t| json!(t).to_string()).collect();
    expected.sort();
    assert_eq!(named, expected);
    rig.emu.clear_fault_rates();
    for body in &dead {
        rig.sqs.send_message(&rig.queue.url, body);
    }
    let status = rig.wait_settled("dlq", &esm, Duration::from_secs(120));
    assert_eq!(status["states"]["done"], targets.len(), "{status}");
    for target in &targets {
        assert_eq!(rig.emu.changes(target).applied, 1, "{target}");
    }

    // A second start of the same id: everything is done, so nothing is sent.
    let again = rig.start("dlq", apply(), None);
    assert_eq!((again["sent"].clone(), again["done"].clone()), (json!(0), json!(targets.len())), "{again}");
    // Another event under the same id is refused.
    let other =
        rig.control(json!({"rollout":"start","rolloutId":"dlq","event":{"action":"unbind","pluginAppid":DEMO_PLUGIN}}));
    let (kind, message) = other.error();
    assert_eq!(kind, "InvalidEvent", "{message}");
}

#[test]
fn a_second_start_sends_only_the_targets_not_yet_done() {
    let rig = Rig::new(20, 34, SharedStore::dynamodb(), 3);
    let targets = fresh(&rig, 20);
    let half = targets.len() / 2;
    rig.start("twice", apply(), Some(&targets));
    // Half the messages are lost before anything runs (as if the first start had died after recording them); the
    // others come back a second later.
    let mut lost = Vec::new();
    while lost.len() < half {
        for message in rig.sqs.receive(&rig.queue.url, 10, Duration::from_secs(1), Some(Duration::from_secs(1))) {
            let body: Value = serde_json::from_str(&message.body).unwrap();
            let target = body["event"]["authorizerAppid"].as_str().unwrap().to_owned();
            if lost.len() < half && !lost.contains(&target) {
                rig.sqs.delete_message_batch(&rig.queue.url, &[&message.receipt_handle]);
                lost.push(target);
            }
        }
    }
    let esm = rig.mapping(1);
    assert!(esm.wait_until(Duration::from_secs(60), |s| s.deleted >= (targets.len() - half) as u64));
    assert!(esm.wait_until_idle(Duration::from_secs(1), Duration::from_secs(30)));
    let status = rig.status("twice");
    let (done, pending) = (status["states"]["done"].clone(), status["states"]["pending"].clone());
    assert_eq!((done, pending), (json!(targets.len() - half), json!(half)), "{status}");

    let again = rig.start("twice", apply(), None);
    assert_eq!((again["sent"].clone(), again["done"].clone()), (json!(half), json!(targets.len() - half)), "{again}");
    let status = rig.wait_settled("twice", &esm, Duration::from_secs(120));
    assert_eq!(status["states"]["done"], targets.len(), "{status}");
    for target in &targets {
        assert_eq!(rig.emu.changes(target).applied, 1, "{target}: once, whichever start sent it");
    }
}
