//! The DynamoDB store against a real DynamoDB-compatible server (dynalite): the Redis store's semantics through the
//! same traits, bounded and resting after failures, never showing a credential; and the real binary using it as the
//! fleet's token cache and a platform's durable store.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::support::dynalite::{self, store_at, Dynalite};
use crate::support::function::Function;
use crate::support::now_ms;
use crate::support::runtime_api::RuntimeApi;
use serde_json::json;
use wechat_emulator::{DEMO_APPID, DEMO_SECRET};
use wx_plugin_manager::token::{CachedToken, DurableStore, Lock, StoreFailure, TokenStore, REFRESH_MARGIN};

const CREDENTIALS: [&str; 3] = [dynalite::ACCESS_KEY_ID, dynalite::SECRET_ACCESS_KEY, dynalite::SESSION_TOKEN];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A token WeChat takes for `ms` more milliseconds.
fn token(value: &str, ms: u64) -> CachedToken {
    CachedToken { value: value.to_owned().into(), expires_at_ms: now_ms() + ms }
}

const TWO_HOURS: u64 = 7_200_000;

#[test]
fn a_saved_token_loads_until_it_is_due_for_refresh_and_not_after_though_dynamodb_still_holds_it() {
    let server = Dynalite::start();
    runtime().block_on(async {
        let store = server.store();
        assert!(store.load("wx:token:stable:wxa").await.unwrap().is_none());
        let saved = token("long-lived-token", TWO_HOURS);
        store.save("wx:token:stable:wxa", &saved).await.unwrap();
        let loaded = store.load("wx:token:stable:wxa").await.unwrap().expect("saved");
        assert_eq!(loaded.expires_at_ms, saved.expires_at_ms);
        assert_eq!(secrecy::ExposeSecret::expose_secret(&loaded.value), "long-lived-token");

        // Due for refresh in 1.5 s: kept until then, absent after, though the item is still in the table (DynamoDB's
        // TTL deletes it later, if ever).
        let margin = REFRESH_MARGIN.as_millis() as u64;
        store.save("wx:token:stable:wxb", &token("short-lived-token", margin + 1_500)).await.unwrap();
        assert!(store.load("wx:token:stable:wxb").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(1_600)).await;
        assert!(store.load("wx:token:stable:wxb").await.unwrap().is_none(), "due: absent");
        assert_eq!(store.get("wx:token:stable:wxb").await.unwrap().as_deref(), Some("short-lived-token"));
        assert!(!store.remove_if("wx:token:stable:wxb", "short-lived-token").await.unwrap(), "absent, as in Redis");

        // A token already due is not saved at all.
        store.save("wx:token:stable:wxc", &token("due-token", margin)).await.unwrap();
        assert!(store.get("wx:token:stable:wxc").await.unwrap().is_none());
    });
}

#[test]
fn remove_if_removes_the_token_only_while_it_is_the_given_one() {
    let server = Dynalite::start();
    runtime().block_on(async {
        let store = server.store();
        store.save("k", &token("new-token", TWO_HOURS)).await.unwrap();
        assert!(!store.remove_if("k", "old-token").await.unwrap(), "a late instance's stale token");
        assert!(store.load("k").await.unwrap().is_some(), "the successor survives");
        assert!(!store.remove_if("k", "new-toke").await.unwrap(), "a prefix is not the token");
        assert!(store.remove_if("k", "new-token").await.unwrap());
        assert!(store.load("k").await.unwrap().is_none());
        assert!(!store.remove_if("k", "new-token").await.unwrap(), "nothing left to remove");
    });
}

#[test]
fn a_lease_has_one_holder_is_released_only_by_it_and_is_taken_over_once_it_ends() {
    let server = Dynalite::start();
    runtime().block_on(async {
        let store = server.store();
        let Lock::Held(first) = store.lock("k", Duration::from_secs(10)).await.unwrap() else { panic!("free lock") };
        assert_eq!(store.lock("k", Duration::from_secs(10)).await.unwrap(), Lock::Taken);
        store.unlock("k", "someone-else").await.unwrap();
        assert_eq!(store.lock("k", Duration::from_secs(10)).await.unwrap(), Lock::Taken, "only the holder unlocks");
        store.unlock("k", &first).await.unwrap();
        let Lock::Held(second) = store.lock("k", Duration::from_millis(200)).await.unwrap() else { panic!("free") };
        assert_ne!(first, second, "every holder is new");
        assert_eq!(store.lock("k", Duration::from_secs(1)).await.unwrap(), Lock::Taken);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Lock::Held(third) = store.lock("k", Duration::from_secs(10)).await.unwrap() else {
            panic!("an ended lease is taken over, though its item is still there")
        };
        store.unlock("k", &second).await.unwrap();
        assert_eq!(store.lock("k", Duration::from_secs(1)).await.unwrap(), Lock::Taken, "the late holder's unlock");
        store.unlock("k", &third).await.unwrap();
        assert!(matches!(store.lock("k", Duration::from_secs(1)).await.unwrap(), Lock::Held(_)));
        assert!(store.load("k").await.unwrap().is_none(), "the lease is not the token");
    });
}

#[test]
fn swap_sets_a_value_only_from_absent_or_from_the_expected_one() {
    let server = Dynalite::start();
    runtime().block_on(async {
        let store = server.store();
        let key = "wx:platform:wxc:ticket";
        assert!(!store.swap(key, Some("anything"), "t1").await.unwrap(), "nothing to compare with");
        assert_eq!(store.get(key).await.unwrap(), None);
        assert!(store.swap(key, None, "1|t1").await.unwrap(), "absent, as expected");
        assert!(!store.swap(key, None, "2|t2").await.unwrap(), "no longer absent");
        assert!(!store.swap(key, Some("1|t0"), "2|t2").await.unwrap(), "not the expected value");
        assert_eq!(store.get(key).await.unwrap().as_deref(), Some("1|t1"));
        assert!(store.swap(key, Some("1|t1"), "2|t2").await.unwrap());
        assert_eq!(store.get(key).await.unwrap().as_deref(), Some("2|t2"));
        assert!(store.load(key).await.unwrap().is_none(), "a durable value is not a token");
    });
}

#[test]
fn delete_if_deletes_only_the_expected_value() {
    let server = Dynalite::start();
    runtime().block_on(async {
        let store = server.store();
        let key = "wx:platform:wxc:refresh:wxa";
        assert!(!store.delete_if(key, "r1").await.unwrap(), "absent");
        assert!(store.swap(key, None, "r1").await.unwrap());
        assert!(!store.delete_if(key, "r0").await.unwrap(), "a rotated-away value");
        assert_eq!(store.get(key).await.unwrap().as_deref(), Some("r1"));
        assert!(store.delete_if(key, "r1").await.unwrap());
        assert_eq!(store.get(key).await.unwrap(), None);
    });
}

#[test]
fn keys_lists_one_prefix_sorted_across_several_scan_pages() {
    let server = Dynalite::start();
    runtime().block_on(async {
        let store = server.store();
        let prefix = "wx:platform:wxc:refresh:";
        let mut expected = Vec::new();
        // Four values of 300 KB: 1.2 MB, more than one scan page (1 MB) holds, so a store that read only the first
        // page would miss some of the keys.
        let big = "r".repeat(300 * 1024);
        for i in 0..4 {
            let key = format!("{prefix}wxbig{i:011}");
            assert!(store.swap(&key, None, &big).await.unwrap());
            expected.push(key);
        }
        for i in (0..30).rev() {
            let key = format!("{prefix}wxsmall{i:09}");
            assert!(store.swap(&key, None, "refresh-token").await.unwrap());
            expected.push(key);
        }
        for other in ["wx:platform:wxd:refresh:wxa", "wx:platform:wxc:ticket", "wx:token:stable:wxa"] {
            assert!(store.swap(other, None, "x").await.unwrap());
        }
        expected.sort();
        assert_eq!(store.keys(prefix).await.unwrap(), expected);
        assert_eq!(store.keys("wx:platform:wxe:").await.unwrap(), Vec::<String>::new());
    });
}

#[test]
fn a_dead_server_fails_at_once_then_the_token_cache_rests_while_durable_calls_are_still_tried() {
    let mut server = Dynalite::start();
    runtime().block_on(async {
        let store = server.store();
        store.save("k", &token("t", TWO_HOURS)).await.unwrap();
        server.kill();

        let started = Instant::now();
        let StoreFailure(why) = store.load("k").await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(500), "refused at once: {:?}", started.elapsed());
        assert!(why.starts_with("DynamoDB GetItem: "), "{why}");
        let StoreFailure(resting) = store.load("k").await.unwrap_err();
        assert_eq!(resting, "resting after a failure", "the token cache is left alone for a moment");
        assert!(store.lock("k", Duration::from_secs(1)).await.is_err());
        let StoreFailure(durable) = store.get("wx:platform:wxc:ticket").await.unwrap_err();
        assert!(durable.starts_with("DynamoDB GetItem: "), "a durable read is still tried: {durable}");

        server.restart();
        assert!(store.load("k").await.is_err(), "still resting after the durable failure");
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        assert!(store.load("k").await.unwrap().is_none(), "back, and empty like a restarted Redis");
        for failure in [why, durable] {
            for credential in CREDENTIALS {
                assert!(!failure.contains(credential), "{failure}");
            }
        }
    });
}

#[test]
fn a_server_that_accepts_but_never_answers_costs_one_bounded_call() {
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = hole.incoming().flatten().collect();
        drop(held);
    });
    let store = store_at(&format!("http://127.0.0.1:{port}"));
    runtime().block_on(async {
        let started = Instant::now();
        let StoreFailure(why) = store.load("k").await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(why, "DynamoDB GetItem: no answer within 1000 ms");
        assert!(took >= Duration::from_millis(900) && took < Duration::from_millis(1_500), "{took:?}");
        let started = Instant::now();
        assert!(store.save("k", &token("t", TWO_HOURS)).await.is_err());
        assert!(started.elapsed() < Duration::from_millis(50), "resting: not tried");
    });
}

#[test]
fn an_error_answer_never_carries_a_credential_though_the_server_echoes_the_whole_request() {
    // A server that refuses every request as AWS does a bad signature, quoting the request it got: the signed
    // headers, the access key id and the session token included.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = vec![0; 64 * 1024];
            let n = stream.read(&mut request).unwrap_or(0);
            let echoed = String::from_utf8_lossy(&request[..n]).into_owned();
            let body = json!({
                "__type": "com.amazon.coral.service#InvalidSignatureException",
                "message": format!("Bad signature for {echoed} (secret {})", dynalite::SECRET_ACCESS_KEY),
            })
            .to_string();
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    let store = store_at(&format!("http://127.0.0.1:{port}"));
    runtime().block_on(async {
        let StoreFailure(why) = store.get("wx:platform:wxc:ticket").await.unwrap_err();
        assert!(why.starts_with("DynamoDB GetItem: InvalidSignatureException (HTTP 400): Bad signature for"), "{why}");
        for credential in CREDENTIALS {
            assert!(!why.contains(credential), "{why}");
        }
        assert!(!why.contains("Signature="), "the signed headers are not quoted: {why}");
    });
}

#[test]
fn without_a_region_or_credentials_the_cold_start_fails_with_a_config_error_naming_the_variable() {
    let server = Dynalite::start();
    let cache = server.token_cache();
    let aws = server.aws_env();
    for (left_out, named) in [
        (["AWS_REGION", "AWS_DEFAULT_REGION"], "AWS_REGION (or AWS_DEFAULT_REGION)"),
        (["AWS_SECRET_ACCESS_KEY", "-"], "AWS_SECRET_ACCESS_KEY"),
    ] {
        let api = RuntimeApi::start();
        let mut env = vec![("WX_APPID", DEMO_APPID), ("WX_SECRET", DEMO_SECRET), ("WX_TOKEN_CACHE", cache.as_str())];
        env.extend(aws.iter().filter(|(k, _)| !left_out.contains(k)).map(|(k, v)| (*k, v.as_str())));
        let mut f = Function::spawn(&api, &env);
        assert!(f.wait_exit(Duration::from_secs(10)).is_some_and(|status| !status.success()));
        let reported = api.init_error().expect("the init error is reported to the Runtime API");
        assert_eq!(reported["errorType"], "ConfigError");
        let message = reported["errorMessage"].as_str().unwrap();
        assert!(message.contains(&format!("WX_TOKEN_CACHE: the DynamoDB store needs {named}")), "{message}");
        for credential in CREDENTIALS {
            assert!(!message.contains(credential) && !f.output().contains(credential));
        }
    }
}
