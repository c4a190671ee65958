//! Rollouts at scale, end to end: 2,000 mini programs of the emulator through moto's SQS, the event source mapping's
//! stand-in at concurrency 5 (five function processes, the release build), Redis as the platform's store, WeChat
//! failing 5 % of plugin calls (5xx, timeouts after the change, -1). Two rollouts through the same processes: an
//! `apply` (each program's first call: its refresh token and authorizer token are got then), and an `update` (tokens
//! cached). For each: the wall time, WeChat's and the store's calls per program, and the processes' memory as the
//! records go by.
//!
//! `cargo bench --bench rollout` (`PROGRAMS=…`, `CONCURRENCY=…` to change the size).

#[path = "../tests/rollout/rig.rs"]
#[allow(dead_code)]
mod rig;
// The tests' support, whole: the bench uses part of it.
#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::redis::RedisServer;
use wechat_emulator::{FaultRates, DEMO_PLUGIN};

use support::esm::EventSourceMapping;
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

/// The CPU time `pid` has used (user and system), in seconds (`/proc/<pid>/stat`, at 100 ticks a second).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The mapping's processes' CPU time together, in seconds.
fn total_cpu(esm: &EventSourceMapping) -> f64 {
    esm.pids().into_iter().flatten().filter_map(cpu_seconds).sum()
}

/// The mapping's processes' memory together, in KiB.
fn total_rss(esm: &EventSourceMapping) -> u64 {
    esm.pids().into_iter().flatten().filter_map(rss_kib).sum()
}

/// Redis's commands since the last reset, by command, and their total.
fn commands(redis: &RedisServer) -> (u64, Vec<(String, u64)>) {
    let stats = redis.cli(&["INFO", "commandstats"]);
    let mut by_command: Vec<(String, u64)> = stats
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .filter(|(name, _)| name != "info" && name != "config|resetstat")
        .collect();
    by_command.sort_by_key(|(_, calls)| std::cmp::Reverse(*calls));
    (by_command.iter().map(|(_, calls)| calls).sum(), by_command)
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
    let esm = rig.mapping(concurrency);
    println!("rollouts: {programs} programs, concurrency {concurrency}, 5 % faults (Redis store, release build)");
    roll_out(&rig, redis, &esm, "bench-apply", json!({"action":"apply","pluginAppid":DEMO_PLUGIN}));
    let versions = rig.emu.world().account(DEMO_PLUGIN).unwrap().plugin.clone().unwrap().quick_update_versions;
    let update = json!({"action":"update","pluginAppid":DEMO_PLUGIN,"userVersion":versions.last().unwrap()});
    roll_out(&rig, redis, &esm, "bench-update", update);
}

fn roll_out(rig: &rig::Rig, redis: &RedisServer, esm: &EventSourceMapping, id: &str, event: Value) {
    let action = event["action"].clone();
    redis.cli(&["CONFIG", "RESETSTAT"]);
    let (plugin_calls, token_calls) =
        (rig.emu.count("/wxa/plugin"), rig.emu.component_token_calls() + rig.emu.authorizer_token_calls());
    let records_before = esm.stats().records;
    let rss_before = total_rss(esm);
    let cpu_before = total_cpu(esm);

    let began = Instant::now();
    let started = rig.start(id, event, None);
    let start_time = began.elapsed();
    let targets = started["targets"].as_u64().unwrap();
    // Done when the queue is empty and no batch is in flight (every message deleted: settled, or in the dead-letter
    // queue). The store is not polled meanwhile, so its commands are the rollout's own.
    let until = Instant::now() + Duration::from_secs(1800);
    let mut idle_since: Option<Instant> = None;
    // The processes' memory together at a quarter, half and three quarters of the targets' records.
    let mut quarters: Vec<(u64, u64)> = Vec::new();
    loop {
        let records = esm.stats().records - records_before;
        if quarters.len() < 3 && records * 4 >= targets * (quarters.len() as u64 + 1) {
            quarters.push((records, total_rss(esm)));
        }
        let idle = esm.stats().in_flight == 0 && rig.sqs.counts(&rig.queue.url).total() == 0;
        idle_since = if idle { idle_since.or(Some(Instant::now())) } else { None };
        if idle_since.is_some_and(|since| since.elapsed() >= Duration::from_secs(2)) {
            break;
        }
        assert!(Instant::now() < until, "not done within 30 minutes: {:?}", esm.stats());
        std::thread::sleep(Duration::from_millis(100));
    }
    let wall = began.elapsed() - idle_since.map_or(Duration::ZERO, |since| since.elapsed());
    let (store, by_command) = commands(redis);
    let status = rig.status(id);
    let open: u64 = ["pending", "running", "retrying"].iter().map(|s| status["states"][s].as_u64().unwrap()).sum();
    assert_eq!(open, 0, "every target settled: {status}");
    let per_program = |n: u64| n as f64 / targets as f64;
    let plugin = rig.emu.count("/wxa/plugin") - plugin_calls;
    let tokens = rig.emu.component_token_calls() + rig.emu.authorizer_token_calls() - token_calls;
    let records = esm.stats().records - records_before;
    let cpu = total_cpu(esm) - cpu_before;

    println!("\n{id} ({action}): {targets} targets");
    println!("  start (the record, then SendMessageBatch to moto): {:.1} s", start_time.as_secs_f64());
    println!(
        "  wall time, start to the queue empty: {:.1} s ({:.0} programs/s)",
        wall.as_secs_f64(),
        targets as f64 / wall.as_secs_f64()
    );
    println!("  states: {}  errCodes: {}", status["states"], status["errCodes"]);
    println!("  records handed to the function: {records} ({:.3} per program)", per_program(records));
    println!(
        "  the processes' CPU time together: {cpu:.2} s ({:.2} ms per record; the rest of the wall time is moto's)",
        cpu * 1000.0 / records as f64
    );
    println!("  WeChat plugin calls per program: {:.3}", per_program(plugin));
    println!("  WeChat token calls per program (component + authorizer): {:.3}", per_program(tokens));
    println!("  Redis commands per program: {:.2}", per_program(store));
    let top: Vec<String> = by_command.iter().take(6).map(|(c, n)| format!("{c} {:.2}", per_program(*n))).collect();
    println!("    by command, per program: {}", top.join(", "));
    println!("  the {} processes' RSS together: before {rss_before} KiB", esm.pids().len());
    for (records, total) in &quarters {
        println!("    after {records} records: {total} KiB");
    }
    println!("    at the end ({records} records): {} KiB", total_rss(esm));
}
