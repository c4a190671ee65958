//! One token for the fleet: many real function processes sharing a real `redis-server`, against the emulator.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::function::Function;
use support::redis::RedisServer;
use support::runtime_api::{Outcome, RuntimeApi};
use support::setup::TIMEOUT;
use wx_plugin_manager::emulator::{Emulator, Fault, DEMO_APPID, DEMO_SECRET};

struct Fleet {
    emu: Emulator,
    api: RuntimeApi,
    functions: Vec<Function>,
}

fn fleet(redis: &RedisServer, size: usize, extra: &[(&str, &str)]) -> Fleet {
    let emu = Emulator::start().unwrap();
    let api = RuntimeApi::start();
    let (base, url) = (emu.base_url().to_owned(), redis.url());
    let mut env =
        vec![("WX_APPID", DEMO_APPID), ("WX_SECRET", DEMO_SECRET), ("WX_API_BASE", &base), ("WX_TOKEN_CACHE", &url)];
    env.extend_from_slice(extra);
    let functions = (0..size).map(|_| Function::spawn(&api, &env)).collect();
    assert!(api.wait_for_polls(size, Duration::from_secs(30)), "every instance polls");
    Fleet { emu, api, functions }
}

impl Fleet {
    /// One `list` per instance, all at once; every one must succeed.
    fn round(&self) {
        let outcomes = self.api.invoke_many(&vec![json!({"action":"list"}); self.functions.len()], TIMEOUT);
        for (i, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Outcome::Response(r) => assert_eq!(r["errCode"], 0, "invocation {i}: {r}"),
                other => panic!("invocation {i}: {other:?}\n{}", self.output()),
            }
        }
    }

    fn output(&self) -> String {
        self.functions.iter().map(Function::output).collect()
    }
}

#[test]
fn fifty_instances_make_one_token_call_and_one_refetch_after_invalidation() {
    let redis = RedisServer::start();
    let f = fleet(&redis, 50, &[]);
    // Slow the one fetch so that every instance arrives while it is under way.
    f.emu.script("/cgi-bin/stable_token", Fault::Delay { ms: 500 }, 1);
    f.round();
    assert_eq!(f.emu.token_calls(), 1);
    let stored = redis.cli(&["GET", &format!("wx:token:stable:{DEMO_APPID}")]);
    let token = &f.emu.issued_tokens()[0];
    assert!(stored.ends_with(&format!("|{token}")), "the token is shared in Redis under a key without the secret");
    let ttl_ms: i64 = redis.cli(&["PTTL", &format!("wx:token:stable:{DEMO_APPID}")]).parse().unwrap();
    assert!((6_800_000..=6_900_000).contains(&ttl_ms), "TTL is expires_in minus the refresh margin: {ttl_ms}");

    f.emu.invalidate_tokens(DEMO_APPID);
    f.emu.script("/cgi-bin/stable_token", Fault::Delay { ms: 500 }, 1);
    f.round();
    assert_eq!(f.emu.token_calls(), 2, "exactly one refetch for the whole fleet");
    assert!(!f.output().contains(support::redis::PASSWORD), "the Redis password is never logged");
}

#[test]
fn invocations_survive_redis_dying_and_the_shared_cache_returns_with_it() {
    let mut redis = RedisServer::start();
    let f = fleet(&redis, 8, &[]);
    f.round();
    assert_eq!(f.emu.token_calls(), 1);

    redis.kill();
    f.round();
    // With Redis gone, instances that need a new token fetch it themselves.
    f.emu.invalidate_tokens(DEMO_APPID);
    f.round();
    assert!(f.output().contains("Redis token cache unavailable"), "a warning says so");
    let without_redis = f.emu.token_calls();
    assert!(without_redis >= 2);

    redis.restart();
    // Past the pause an instance takes after a Redis failure.
    std::thread::sleep(Duration::from_millis(1_500));
    f.emu.invalidate_tokens(DEMO_APPID);
    f.emu.script("/cgi-bin/stable_token", Fault::Delay { ms: 500 }, 1);
    f.round();
    assert_eq!(f.emu.token_calls(), without_redis + 1, "one fetch for the fleet again");
    assert!(!f.output().contains(support::redis::PASSWORD));
}

#[test]
fn a_refresh_lock_holder_that_dies_does_not_hold_up_the_others_beyond_the_bounded_wait() {
    let redis = RedisServer::start();
    let emu = Emulator::start().unwrap();
    let base = emu.base_url().to_owned();
    let url = redis.url();
    let env = [
        ("WX_APPID", DEMO_APPID),
        ("WX_SECRET", DEMO_SECRET),
        ("WX_API_BASE", base.as_str()),
        ("WX_TOKEN_CACHE", &url),
    ];
    let holder_api = RuntimeApi::start();
    let mut holder = Function::spawn(&holder_api, &env);
    let other_api = RuntimeApi::start();
    let _other = Function::spawn(&other_api, &env);
    assert!(
        holder_api.wait_for_polls(1, Duration::from_secs(10)) && other_api.wait_for_polls(1, Duration::from_secs(10))
    );

    // The holder takes the lease and hangs in its fetch; then it dies.
    emu.script("/cgi-bin/stable_token", Fault::Delay { ms: 30_000 }, 1);
    std::thread::scope(|scope| {
        scope.spawn(|| holder_api.invoke(&json!({"action":"list"}), Duration::from_secs(3)));
        let until = Instant::now() + Duration::from_secs(5);
        while emu.token_calls() == 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(emu.token_calls(), 1, "the holder is fetching");
        assert!(!redis.cli(&["GET", &format!("wx:token:stable:{DEMO_APPID}:lock")]).is_empty(), "and holds the lease");
        kill_9(holder.pid());
        assert!(holder.wait_exit(Duration::from_secs(5)).is_some());

        // The bounded wait is half the remaining time (6 s less the margin, halved: about 2.9 s).
        let started = Instant::now();
        let answer: Value = other_api.invoke(&json!({"action":"list"}), Duration::from_secs(6)).response();
        let took = started.elapsed();
        assert_eq!(answer["errCode"], 0);
        assert!(took >= Duration::from_millis(2_500), "it waited for the holder first: {took:?}");
        assert!(took < Duration::from_secs(4), "but only for the bounded wait: {took:?}");
    });
    assert_eq!(emu.token_calls(), 2);
}

/// SIGKILL, so the process gets no chance to release anything.
fn kill_9(pid: u32) {
    let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn an_unreachable_redis_at_cold_start_does_not_stop_the_function() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let emu = Emulator::start().unwrap();
    let api = RuntimeApi::start();
    let dead = format!("redis://127.0.0.1:{port}");
    let base = emu.base_url().to_owned();
    let f = Function::spawn(
        &api,
        &[("WX_APPID", DEMO_APPID), ("WX_SECRET", DEMO_SECRET), ("WX_API_BASE", &base), ("WX_TOKEN_CACHE", &dead)],
    );
    let started = Instant::now();
    assert_eq!(api.invoke(&json!({"action":"list"}), TIMEOUT).response()["errCode"], 0);
    assert!(started.elapsed() < Duration::from_secs(2), "Redis timeouts stay well inside the deadline");
    assert_eq!(api.invoke(&json!({"action":"list"}), TIMEOUT).response()["errCode"], 0);
    assert_eq!(emu.token_calls(), 1, "the instance's own copy serves the second call");
    assert!(f.output().contains("Redis token cache unavailable"));
}

#[test]
fn a_slow_refresh_is_waited_for_and_a_failed_one_handed_over() {
    let redis = RedisServer::start();
    let f = fleet(&redis, 20, &[]);
    // The holder takes 2.6 s: everyone waits for it rather than fetching too.
    f.emu.script("/cgi-bin/stable_token", Fault::Delay { ms: 2_600 }, 1);
    let outcomes = f.api.invoke_many(&vec![json!({"action":"list"}); 20], Duration::from_secs(10));
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Response(r) if r["errCode"] == 0)), "{outcomes:?}");
    assert_eq!(f.emu.token_calls(), 1);

    // The holder's fetch fails at once: the lease is let go, one waiter takes it over, the rest get its token.
    f.emu.invalidate_tokens(DEMO_APPID);
    f.emu.script("/cgi-bin/stable_token", Fault::Errcode { errcode: -1, errmsg: None }, 1);
    let outcomes = f.api.invoke_many(&vec![json!({"action":"list"}); 20], Duration::from_secs(10));
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !matches!(o, Outcome::Response(_))).collect();
    assert_eq!(failed.len(), 1, "only the holder's invocation fails: {failed:?}");
    assert!(matches!(failed[0], Outcome::Error { error_type, .. } if error_type == "TokenError"));
    assert_eq!(f.emu.token_calls(), 3, "the failed fetch and one more");
}

#[test]
fn the_store_deletes_and_unlocks_only_what_it_was_asked_about() {
    use wx_plugin_manager::token::{CachedToken, Lock, RedisStore, TokenStore};
    let redis = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = RedisStore::new(&redis.url()).unwrap();
        let in_two_hours = wx_plugin_manager::token::now_ms() + 7_200_000;
        let token = |v: &str| CachedToken { value: v.to_owned().into(), expires_at_ms: in_two_hours };
        store.save("k", &token("new-token")).await.unwrap();
        assert!(!store.remove_if("k", "old-token").await.unwrap(), "a late instance's stale token");
        assert!(store.load("k").await.unwrap().is_some(), "the successor survives");
        assert!(!store.remove_if("k", "new-toke").await.unwrap(), "a prefix is not the token");
        assert!(store.remove_if("k", "new-token").await.unwrap());
        assert!(store.load("k").await.unwrap().is_none());

        let Lock::Held(first) = store.lock("k", Duration::from_secs(10)).await.unwrap() else { panic!("free lock") };
        assert_eq!(store.lock("k", Duration::from_secs(10)).await.unwrap(), Lock::Taken);
        store.unlock("k", "someone-else").await.unwrap();
        assert_eq!(store.lock("k", Duration::from_secs(10)).await.unwrap(), Lock::Taken, "only the holder unlocks");
        store.unlock("k", &first).await.unwrap();
        assert!(matches!(store.lock("k", Duration::from_millis(200)).await.unwrap(), Lock::Held(_)));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(matches!(store.lock("k", Duration::from_secs(1)).await.unwrap(), Lock::Held(_)), "a lease expires");
    });
}

#[test]
fn a_redis_that_accepts_but_never_answers_costs_little_and_never_the_deadline() {
    // A black hole: connections are accepted and held, nothing is ever answered.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in hole.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let emu = Emulator::start().unwrap();
    let api = RuntimeApi::start();
    let url = format!("redis://127.0.0.1:{port}");
    let base = emu.base_url().to_owned();
    let f = Function::spawn(
        &api,
        &[("WX_APPID", DEMO_APPID), ("WX_SECRET", DEMO_SECRET), ("WX_API_BASE", &base), ("WX_TOKEN_CACHE", &url)],
    );
    for limit in [Duration::from_secs(5), Duration::from_millis(700)] {
        emu.invalidate_tokens(DEMO_APPID);
        let started = Instant::now();
        let outcome = api.invoke(&json!({"action":"list"}), limit);
        assert!(started.elapsed() < limit, "past the deadline: {:?}", started.elapsed());
        assert!(!matches!(outcome, Outcome::NoAnswer));
    }
    assert!(f.output().contains("Redis token cache unavailable"));
    assert!(!held.lock().unwrap().is_empty(), "Redis was tried");
}
