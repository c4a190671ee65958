//! Hundreds of mini programs through the real queue, the real store and real function processes, with WeChat failing
//! one call in twenty (timeouts after the change was made among them) and a process killed mid-batch: every target
//! ends with one final outcome, and no program is changed twice.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use wechat_emulator::{Changes, FaultRates, DEMO_PLUGIN};

use super::rig::{generated, Rig};
use crate::support::shared_store::SharedStore;

const PROGRAMS: usize = 500;
const FINAL: [&str; 3] = ["done", "failed", "quota"];

/// 5 % of plugin calls fail: 2 % HTTP 5xx, 1.5 % a timeout after the change was made, 1.5 % WeChat's -1.
fn five_percent(seed: u64) -> FaultRates {
    FaultRates { status_5xx: 0.02, timeout_after_apply: 0.015, busy: 0.015, seed, timeout_ms: 10_000 }
}

/// Runs `event` out to every authorised program with faults and a kill; the report, the dead letters, and the
/// emulator's count of what each program's calls changed.
fn roll_out(rig: &Rig, id: &str, event: Value) -> (BTreeMap<String, Value>, Vec<String>, BTreeMap<String, Changes>) {
    rig.emu.set_fault_rates(five_percent(7));
    let started = rig.start(id, event, None);
    assert!(started["targets"].as_u64().unwrap() >= PROGRAMS as u64, "{started}");
    assert_eq!(started["sent"], started["targets"], "{started}");
    let esm = rig.mapping(3);
    // A process dies a quarter second into some batch: its records come back after the visibility timeout.
    esm.kill_one_during_next_batch(|since| since > Duration::from_millis(250));
    let status = rig.wait_settled(id, &esm, Duration::from_secs(300));
    assert_eq!(esm.stats().kills, 1, "{:?}", esm.stats());
    let report = rig.report(id);
    assert_eq!(report.len() as u64, status["targets"].as_u64().unwrap(), "report lists every target: {status}");
    for (target, outcome) in &report {
        assert!(FINAL.contains(&outcome["state"].as_str().unwrap()), "{target}: {outcome}");
    }
    rig.assert_no_secret_in(&(esm.output() + &rig.control.output()));
    (report, rig.dead_letters(), rig.emu.all_changes())
}

/// The targets every attempt failed for, as the report says.
fn exhausted(report: &BTreeMap<String, Value>) -> Vec<String> {
    report.iter().filter(|(_, o)| o["exhausted"] == true).map(|(t, _)| t.clone()).collect()
}

#[test]
fn applying_to_500_programs_through_faults_and_a_killed_process_changes_each_at_most_once() {
    let rig = Rig::new(PROGRAMS, 21, SharedStore::redis(), 4);
    let (report, dead, changes) = roll_out(&rig, "apply-500", json!({"action":"apply","pluginAppid":DEMO_PLUGIN}));
    let world = rig.emu.world();
    let had = |appid: &str| world.applications.iter().find(|a| a.applicant == appid && a.plugin == DEMO_PLUGIN);
    for program in generated(&rig.emu, PROGRAMS) {
        let outcome = &report[&program];
        let changed = changes.get(&program).copied().unwrap_or_default();
        assert!(changed.applied <= 1, "{program} changed twice: {changed:?} {outcome}");
        match outcome["state"].as_str().unwrap() {
            // Looked for after an unknown outcome: there, by that call or from before the rollout.
            "done" if outcome["errMsg"].as_str().unwrap().starts_with("found in place") => {
                assert!(had(&program).is_some(), "{program}: {outcome}")
            }
            "done" => assert_eq!(changed.applied, 1, "{program}: done, so WeChat took one apply: {outcome}"),
            "failed" if outcome["exhausted"] == true => {}
            "failed" => {
                // WeChat's refusal: the program had applied already (89237), and nothing changed.
                assert_eq!(outcome["errCode"], 89237, "{program}: {outcome}");
                assert_eq!(changed.applied, 0, "{program}: {outcome}");
            }
            other => panic!("{program}: {other}: {outcome}"),
        }
        assert!(had(&program).is_some() || outcome["state"] != "done", "{program}: done leaves an application");
    }
    assert_eq!(dead, exhausted(&report), "the dead-letter queue holds exactly the targets every attempt failed for");
    let counts = |state: &str| report.values().filter(|o| o["state"] == state).count();
    assert!(
        counts("done") > PROGRAMS / 3 && counts("failed") > 0,
        "done {} failed {}",
        counts("done"),
        counts("failed")
    );
    // The faults were met, and some change was made by a call whose answer never came (then found, not resent).
    let found = report.values().filter(|o| o["errMsg"].as_str().unwrap().starts_with("found in place")).count();
    let retried = report.values().filter(|o| o["attempts"].as_u64().unwrap() > 1).count();
    assert!(retried > 0, "some target needed a second attempt");
    assert!(found > 0, "a change whose answer never came was looked for on the retry, not sent again");
    let timed_out_then_found = report.iter().any(|(program, o)| {
        o["errMsg"].as_str().unwrap().starts_with("found in place")
            && changes.get(program).is_some_and(|c| c.applied == 1)
    });
    assert!(timed_out_then_found, "a change made by a call that timed out was found, and not made again");
}

#[test]
fn updating_500_programs_through_faults_and_a_killed_process_resends_only_what_changes_nothing() {
    let rig = Rig::new(PROGRAMS, 22, SharedStore::dynamodb(), 4);
    let versions = rig.emu.world().account(DEMO_PLUGIN).unwrap().plugin.clone().unwrap().quick_update_versions;
    let newest = versions.last().unwrap().clone();
    let event = json!({"action":"update","pluginAppid":DEMO_PLUGIN,"userVersion":newest});
    let (report, dead, changes) = roll_out(&rig, "update-500", event);
    for program in generated(&rig.emu, PROGRAMS) {
        let outcome = &report[&program];
        let changed = changes.get(&program).copied().unwrap_or_default();
        // The retry rule: an update whose outcome is unknown is sent again; the version is absolute, so the second
        // one changes nothing (counted `unchanged`), and no program is ever moved twice.
        assert!(changed.applied <= 1, "{program} changed twice: {changed:?} {outcome}");
        match outcome["state"].as_str().unwrap() {
            "done" => assert!(changed.applied + changed.unchanged >= 1, "{program}: {changed:?} {outcome}"),
            "failed" if outcome["exhausted"] == true => {}
            "failed" => {
                assert_eq!(changed.applied, 0, "{program}: {outcome}");
                assert!(outcome["errCode"].as_i64().unwrap() > 0, "WeChat's own code: {outcome}");
            }
            other => panic!("{program}: {other}: {outcome}"),
        }
    }
    assert_eq!(dead, exhausted(&report), "the dead-letter queue holds exactly the targets every attempt failed for");
    assert!(report.values().any(|o| o["state"] == "done"), "some program was updated");
}
