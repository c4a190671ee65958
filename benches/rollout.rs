//! A rollout at scale, end to end: `apply` to 2,000 mini programs of the emulator through moto's SQS, the event source
//! mapping's stand-in at concurrency 5 (five function processes, the release build), Redis as the platform's store,
//! WeChat failing 5 % of plugin calls (5xx, timeouts after the change, -1). Reports the wall time, WeChat's and the
//! store's calls per program, and each function process's memory across its batches.
//!
//! `cargo bench --bench rollout` (`PROGRAMS=…`, `CONCURRENCY=…` to change the size).

#[path = "../tests/rollout/rig.rs"]
#[allow(dead_code)]
mod rig;
#[path = "../tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use wechat_emulator::{FaultRates, DEMO_PLUGIN};

use support::shared_store::SharedStore;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The resident set of `pid`, in KiB (Linux's `/proc`).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let programs = env_number("PROGRAMS", 2000);
    let concurrency = env_number("CONCURRENCY", 5);
    let rig = rig::Rig::new(programs, 2026, SharedStore::redis(), 5);
    rig.emu.set_fault_rates(FaultRates {
        status_5xx: 0.02,
        timeout_after_apply: 0.015,
        busy: 0.015,
        seed: 11,
        timeout_ms: 10_000,
    });
    let SharedStore::Redis(redis) = &rig.store else { unreachable!() };
    let commands = || -> u64 {
        let info = redis.cli(&["INFO", "stats"]);
        let line = info.lines().find(|l| l.starts_with("total_commands_processed:")).unwrap_or_default();
        line.trim().rsplit(':').next().and_then(|n| n.parse().ok()).unwrap_or_default()
    };
    let (plugin_calls, component_calls, store_calls) =
        (rig.emu.count("/wxa/plugin"), rig.emu.component_token_calls() + rig.emu.authorizer_token_calls(), commands());

    let began = Instant::now();
    let started = rig.start("bench", json!({"action":"apply","pluginAppid":DEMO_PLUGIN}), None);
    let start_time = began.elapsed();
    let esm = rig.mapping(concurrency);
    // Each process's memory, sampled while the batches run: (pid, first, largest, last) in KiB.
    let mut memory: Vec<(u32, u64, u64, u64)> = Vec::new();
    let sample = |memory: &mut Vec<(u32, u64, u64, u64)>| {
        for pid in esm.pids().into_iter().flatten() {
            let Some(rss) = rss_kib(pid) else { continue };
            match memory.iter_mut().find(|m| m.0 == pid) {
                Some(m) => {
                    m.2 = m.2.max(rss);
                    m.3 = rss;
                }
                None => memory.push((pid, rss, rss, rss)),
            }
        }
    };
    let until = Instant::now() + Duration::from_secs(1800);
    let status = loop {
        sample(&mut memory);
        let status = rig.status("bench");
        let open: u64 = ["pending", "running", "retrying"].iter().map(|s| status["states"][s].as_u64().unwrap()).sum();
        if open == 0 && rig.sqs.counts(&rig.queue.url).total() == 0 && esm.stats().in_flight == 0 {
            break status;
        }
        assert!(Instant::now() < until, "not settled: {status}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let wall = began.elapsed();
    let stats = esm.stats();
    let targets = status["targets"].as_u64().unwrap() as f64;
    let plugin = (rig.emu.count("/wxa/plugin") - plugin_calls) as f64;
    let component = (rig.emu.component_token_calls() + rig.emu.authorizer_token_calls() - component_calls) as f64;
    // The bench's own status polls are Redis commands too: counted apart by a status call's cost.
    let store = (commands() - store_calls) as f64;

    println!("rollout: {targets} targets, concurrency {concurrency}, 5 % faults (Redis store, release build)");
    println!("  start (record + SendMessageBatch): {:.2} s, answer {started}", start_time.as_secs_f64());
    println!("  wall time to every target settled: {:.1} s", wall.as_secs_f64());
    println!("  states: {}", status["states"]);
    println!("  errCodes: {}", status["errCodes"]);
    println!("  WeChat plugin calls per program: {:.3}", plugin / targets);
    println!("  WeChat token calls per program (component + authorizer): {:.3}", component / targets);
    println!("  Redis commands per program (the bench's status polls included): {:.2}", store / targets);
    println!(
        "  batches {} records {} listed for retry {} whole-batch failures {}",
        stats.batches, stats.records, stats.failures_reported, stats.whole_batch_failures
    );
    for (pid, first, largest, last) in &memory {
        println!("  function {pid}: RSS first {first} KiB, largest {largest} KiB, last {last} KiB");
    }
}
