//! One store for the fleet, whichever it is: every test here runs once against a real `redis-server` and once
//! against a real DynamoDB-compatible server (dynalite), with many real function processes against the emulator.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::support::function::Function;
use crate::support::runtime_api::{Outcome, RuntimeApi};
use crate::support::setup::TIMEOUT;
use crate::support::shared_store::{on_both_stores, SharedStore};
use serde_json::{json, Value};
use wechat_emulator::{
    Emulator, Fault, PlatformPush, DEMO_APPID, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID, DEMO_COMPONENT_SECRET,
    DEMO_COMPONENT_TOKEN, DEMO_SECRET,
};

on_both_stores!(
    fifty_instances_make_one_token_call_and_one_refetch_after_invalidation,
    invocations_survive_the_store_dying_and_the_shared_cache_returns_with_it,
    a_refresh_lease_holder_that_dies_does_not_hold_up_the_others_beyond_the_bounded_wait,
    a_slow_refresh_is_waited_for_and_a_failed_one_handed_over,
    twenty_platform_instances_share_the_ticket_one_component_token_and_one_authorizer_token_per_mini_program,
    a_lost_refresh_token_is_recovered_from_wechat_s_list_and_a_rotated_one_is_never_lost,
    a_verified_push_that_cannot_be_stored_is_not_answered_success,
);

const TOKEN_KEY: &str = "wx:token:stable:wxdemo0000000001";
const COMPONENT: &str = DEMO_COMPONENT_APPID;
/// A mini program with an approved plugin besides the demo one.
const BUYER: &str = "wxbuyer000000002";

fn app_env(emu: &Emulator, store: &SharedStore) -> Vec<(String, String)> {
    let mut env = vec![
        ("WX_APPID".to_owned(), DEMO_APPID.to_owned()),
        ("WX_SECRET".to_owned(), DEMO_SECRET.to_owned()),
        ("WX_API_BASE".to_owned(), emu.base_url().to_owned()),
    ];
    env.extend(store.env());
    env
}

fn platform_env(emu: &Emulator, store: &SharedStore) -> Vec<(String, String)> {
    let mut env = vec![
        ("WX_COMPONENT_APPID".to_owned(), COMPONENT.to_owned()),
        ("WX_COMPONENT_SECRET".to_owned(), DEMO_COMPONENT_SECRET.to_owned()),
        ("WX_COMPONENT_TOKEN".to_owned(), DEMO_COMPONENT_TOKEN.to_owned()),
        ("WX_COMPONENT_AES_KEY".to_owned(), DEMO_COMPONENT_AES_KEY.to_owned()),
        ("WX_API_BASE".to_owned(), emu.base_url().to_owned()),
    ];
    env.extend(store.env());
    env
}

fn spawn(api: &RuntimeApi, env: &[(String, String)]) -> Function {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Function::spawn(api, &env)
}

struct Fleet {
    emu: Emulator,
    api: RuntimeApi,
    functions: Vec<Function>,
}

fn fleet(store: &SharedStore, size: usize) -> Fleet {
    let emu = Emulator::start().unwrap();
    let api = RuntimeApi::start();
    let env = app_env(&emu, store);
    let functions = (0..size).map(|_| spawn(&api, &env)).collect();
    assert!(api.wait_for_polls(size, Duration::from_secs(60)), "every instance polls");
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

#[track_caller]
fn assert_clean(output: &str, store: &SharedStore) {
    for secret in store.secrets() {
        assert!(!output.contains(secret), "a store credential was logged");
    }
}

fn fifty_instances_make_one_token_call_and_one_refetch_after_invalidation(store: SharedStore) {
    let f = fleet(&store, 50);
    // Slow the one fetch so that every instance arrives while it is under way.
    f.emu.script("/cgi-bin/stable_token", Fault::Delay { ms: 500 }, 1);
    f.round();
    assert_eq!(f.emu.token_calls(), 1);
    let token = &f.emu.issued_tokens()[0];
    assert_eq!(store.token(TOKEN_KEY).as_ref(), Some(token), "the token is shared under a key without the secret");
    if let SharedStore::Redis(redis) = &store {
        let ttl_ms: i64 = redis.cli(&["PTTL", TOKEN_KEY]).parse().unwrap();
        assert!((6_800_000..=6_900_000).contains(&ttl_ms), "TTL is expires_in minus the refresh margin: {ttl_ms}");
    }

    f.emu.invalidate_tokens(DEMO_APPID);
    f.emu.script("/cgi-bin/stable_token", Fault::Delay { ms: 500 }, 1);
    f.round();
    assert_eq!(f.emu.token_calls(), 2, "exactly one refetch for the whole fleet");
    assert_clean(&f.output(), &store);
}

fn invocations_survive_the_store_dying_and_the_shared_cache_returns_with_it(mut store: SharedStore) {
    let f = fleet(&store, 8);
    f.round();
    assert_eq!(f.emu.token_calls(), 1);

    store.kill();
    f.round();
    // With the store gone, instances that need a new token fetch it themselves.
    f.emu.invalidate_tokens(DEMO_APPID);
    f.round();
    assert!(f.output().contains(store.unavailable_warning()), "a warning says so");
    let without_store = f.emu.token_calls();
    assert!(without_store >= 2);

    store.restart();
    // Past the pause an instance takes after a store failure.
    std::thread::sleep(Duration::from_millis(1_500));
    f.emu.invalidate_tokens(DEMO_APPID);
    f.emu.script("/cgi-bin/stable_token", Fault::Delay { ms: 500 }, 1);
    f.round();
    assert_eq!(f.emu.token_calls(), without_store + 1, "one fetch for the fleet again");
    assert_clean(&f.output(), &store);
}

fn a_refresh_lease_holder_that_dies_does_not_hold_up_the_others_beyond_the_bounded_wait(store: SharedStore) {
    let emu = Emulator::start().unwrap();
    let env = app_env(&emu, &store);
    let holder_api = RuntimeApi::start();
    let mut holder = spawn(&holder_api, &env);
    let other_api = RuntimeApi::start();
    let _other = spawn(&other_api, &env);
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
        assert!(store.lease_held(TOKEN_KEY), "and holds the lease");
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

fn a_slow_refresh_is_waited_for_and_a_failed_one_handed_over(store: SharedStore) {
    let f = fleet(&store, 20);
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

fn deliver(api: &RuntimeApi, push: &PlatformPush) -> Value {
    api.invoke(&push.http_api_event(), TIMEOUT).response()
}

#[track_caller]
fn assert_success(reply: &Value) {
    assert_eq!(reply["statusCode"], 200, "{reply}");
    assert_eq!(reply["body"], "success", "the bare string WeChat wants: {reply}");
}

fn list_for(authorizer: &str) -> Value {
    json!({"action":"list","authorizerAppid":authorizer})
}

fn twenty_platform_instances_share_the_ticket_one_component_token_and_one_authorizer_token_per_mini_program(
    store: SharedStore,
) {
    let emu = Emulator::start().unwrap();
    let api = RuntimeApi::start();
    let env = platform_env(&emu, &store);
    let functions: Vec<Function> = (0..20).map(|_| spawn(&api, &env)).collect();
    assert!(api.wait_for_polls(20, Duration::from_secs(60)), "every instance polls");

    // Each push reaches whichever instance is free; what it stores, every instance sees.
    assert_success(&deliver(&api, &emu.push_ticket(COMPONENT)));
    let ticket = store.durable(&format!("wx:platform:{COMPONENT}:ticket")).expect("the ticket is stored");
    assert!(ticket.ends_with(&format!("|{}", emu.current_ticket(COMPONENT).unwrap())), "{ticket}");
    if let SharedStore::Redis(redis) = &store {
        assert_eq!(redis.cli(&["PTTL", &format!("wx:platform:{COMPONENT}:ticket")]), "-1", "kept without a TTL");
    }
    assert_success(&deliver(&api, &emu.authorize(COMPONENT, DEMO_APPID, &[40])));
    assert_success(&deliver(&api, &emu.authorize(COMPONENT, BUYER, &[40])));
    let refresh_key = format!("wx:platform:{COMPONENT}:refresh:{DEMO_APPID}");
    assert_eq!(store.durable(&refresh_key), emu.refresh_token(COMPONENT, DEMO_APPID));
    if let SharedStore::Redis(redis) = &store {
        assert_eq!(redis.cli(&["PTTL", &refresh_key]), "-1", "refresh tokens are kept without a TTL");
    }

    let round = || {
        let events: Vec<Value> = (0..40).map(|i| list_for(if i % 2 == 0 { DEMO_APPID } else { BUYER })).collect();
        for (i, outcome) in api.invoke_many(&events, TIMEOUT).into_iter().enumerate() {
            match outcome {
                Outcome::Response(r) => assert_eq!(r["errCode"], 0, "invocation {i}: {r}"),
                other => panic!("invocation {i}: {other:?}"),
            }
        }
    };
    round();
    assert_eq!(emu.component_token_calls(), 1, "one component token for the fleet");
    let tokens_by_appid = || {
        let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
        for request in emu.requests().iter().filter(|r| r.path == "/wxa/plugin") {
            let token = request.query_param("access_token").unwrap();
            let appid = emu.token_record(&token).unwrap().appid;
            seen.entry(appid).or_default().insert(token);
        }
        seen
    };
    let seen = tokens_by_appid();
    assert_eq!(seen[DEMO_APPID].len(), 1, "one authorizer token for {DEMO_APPID}: {seen:?}");
    assert_eq!(seen[BUYER].len(), 1, "one authorizer token for {BUYER}: {seen:?}");

    // WeChat voids both authorizer tokens: the fleet fetches exactly one new one per mini program.
    emu.invalidate_tokens(DEMO_APPID);
    emu.invalidate_tokens(BUYER);
    let before = emu.authorizer_token_calls();
    round();
    assert_eq!(emu.authorizer_token_calls() - before, 2, "one fetch per mini program for the whole fleet");
    assert_eq!(emu.component_token_calls(), 1);
    let output: String = functions.iter().map(Function::output).collect();
    assert!(!output.contains(DEMO_COMPONENT_SECRET));
    assert_clean(&output, &store);
}

fn a_lost_refresh_token_is_recovered_from_wechat_s_list_and_a_rotated_one_is_never_lost(store: SharedStore) {
    let emu = Emulator::start().unwrap();
    let api = RuntimeApi::start();
    let _function = spawn(&api, &platform_env(&emu, &store));
    assert_success(&deliver(&api, &emu.push_ticket(COMPONENT)));
    assert_success(&deliver(&api, &emu.authorize(COMPONENT, BUYER, &[40])));
    let refresh_key = format!("wx:platform:{COMPONENT}:refresh:{BUYER}");

    // The store lost the refresh token (a flush, a failover) and WeChat voided the access token.
    store.lose(&refresh_key);
    emu.invalidate_tokens(BUYER);
    assert_eq!(api.invoke(&list_for(BUYER), TIMEOUT).response()["errCode"], 0);
    assert_eq!(emu.count("/cgi-bin/component/api_get_authorizer_list"), 1);
    assert_eq!(store.durable(&refresh_key), emu.refresh_token(COMPONENT, BUYER));

    // WeChat rotates the refresh token: the new one is saved when it comes back with an access token.
    let rotated = emu.rotate_refresh_token(COMPONENT, BUYER);
    emu.invalidate_tokens(BUYER);
    assert_eq!(api.invoke(&list_for(BUYER), TIMEOUT).response()["errCode"], 0);
    assert_eq!(store.durable(&refresh_key), Some(rotated));
}

fn a_verified_push_that_cannot_be_stored_is_not_answered_success(mut store: SharedStore) {
    let emu = Emulator::start().unwrap();
    let api = RuntimeApi::start();
    let function = spawn(&api, &platform_env(&emu, &store));
    assert_success(&deliver(&api, &emu.push_ticket(COMPONENT)));

    store.kill();
    let reply = deliver(&api, &emu.push_ticket(COMPONENT));
    assert_eq!(reply["statusCode"], 503, "WeChat must not hear success for a ticket that was not kept: {reply}");
    let reply = deliver(&api, &emu.authorize(COMPONENT, DEMO_APPID, &[40]));
    assert_eq!(reply["statusCode"], 503, "nor for a refresh token that was not kept: {reply}");
    assert!(function.output().contains("push_unstored"));

    // Back up (empty, as after a failover): the next push is kept, and the mini program is recovered from the list.
    store.restart();
    assert_success(&deliver(&api, &emu.push_ticket(COMPONENT)));
    assert_eq!(api.invoke(&list_for(DEMO_APPID), TIMEOUT).response()["errCode"], 0);
    assert_eq!(emu.count("/cgi-bin/component/api_get_authorizer_list"), 1);
}
