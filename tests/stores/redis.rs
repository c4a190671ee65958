//! What is Redis's own: its store semantics, a Redis unreachable at cold start or accepting and never answering.
//! The fleet tests that hold for every shared store (Redis and DynamoDB) are in `shared_store.rs`.

use std::time::{Duration, Instant};

use crate::support::function::Function;
use crate::support::runtime_api::{Outcome, RuntimeApi};
use crate::support::setup::TIMEOUT;
use serde_json::json;
use testkit::redis::RedisServer;
use wechat_emulator::{Emulator, DEMO_APPID, DEMO_SECRET};

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
fn the_store_deletes_and_unlocks_only_what_it_was_asked_about() {
    use wx_plugin_manager::token::{CachedToken, Lock, RedisStore, TokenStore};
    let redis = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = RedisStore::new(&redis.url()).unwrap();
        let in_two_hours = crate::support::now_ms() + 7_200_000;
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
