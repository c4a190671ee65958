//! Token acquisition: from this instance's memory, and from a shared store (Redis, DynamoDB), on a hit and on a miss
//! (a fetch from the emulator's stable_token endpoint on loopback). Needs `redis-server` on PATH for the Redis part,
//! and dynalite (`cd tests/dynalite && npm ci`) for the DynamoDB part: a local server, so the figures are the
//! function's own cost plus loopback, not DynamoDB's service latency.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};
use secrecy::ExposeSecret;
use wechat_emulator::{Emulator, DEMO_APPID, DEMO_SECRET};
use wx_plugin_manager::token::{RedisStore, TokenProvider, TokenStore};
use wx_plugin_manager::TokenEndpoint;

#[allow(dead_code)] // the test support's other helpers
#[path = "../tests/support/dynalite.rs"]
mod dynalite;
use wx_plugin_manager::wechat::WeChatClient;

struct Redis(Child, u16);

impl Redis {
    fn start() -> Option<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        let until = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Redis(child, port))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn token_acquisition(c: &mut Criterion) {
    let emulator = Emulator::start().unwrap();
    emulator.edit_world(|w| w.settings.stable_minute_quota = u32::MAX);
    let client = WeChatClient::new(emulator.base_url()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let deadline = || Instant::now() + Duration::from_secs(10);
    let provider = |shared: Option<Arc<dyn TokenStore>>| {
        TokenProvider::new(TokenEndpoint::Stable, DEMO_APPID, DEMO_SECRET.to_owned().into(), shared)
    };

    let mut group = c.benchmark_group("token");
    let warm = provider(None);
    runtime.block_on(warm.token(&client, deadline())).unwrap();
    group.bench_function("memory_hit", |b| b.iter(|| runtime.block_on(warm.token(&client, deadline())).unwrap()));
    group.bench_function("memory_miss", |b| {
        b.iter_batched(
            || provider(None),
            |fresh| runtime.block_on(fresh.token(&client, deadline())).unwrap(),
            BatchSize::SmallInput,
        )
    });

    let Some(redis) = Redis::start() else {
        eprintln!("redis-server is not installed: the shared-store benchmarks did not run");
        return;
    };
    let _inside = runtime.enter();
    let redis_store = RedisStore::new(&format!("redis://127.0.0.1:{}", redis.1)).unwrap();
    let shared = Shared { client: &client, runtime: &runtime, provider: &provider };
    shared.bench(&mut group, "redis", Arc::new(redis_store));
    drop(redis);
    let dynalite = dynalite::Dynalite::start();
    shared.bench(&mut group, "dynamodb", Arc::new(dynalite.store()));
    group.finish();
}

/// What a shared store's hit and miss need.
struct Shared<'a, P> {
    client: &'a WeChatClient,
    runtime: &'a tokio::runtime::Runtime,
    provider: &'a P,
}

impl<P: Fn(Option<Arc<dyn TokenStore>>) -> TokenProvider> Shared<'_, P> {
    /// `<name>_hit`: a fresh instance finds the fleet's token in the store; `<name>_miss`: it fetches one (the
    /// store's token removed first), and shares it.
    fn bench(&self, group: &mut BenchmarkGroup<'_, WallTime>, name: &str, store: Arc<dyn TokenStore>) {
        let deadline = || Instant::now() + Duration::from_secs(10);
        let key = format!("wx:token:stable:{DEMO_APPID}");
        let fresh = || (self.provider)(Some(store.clone()));
        let (shared_token, _) = self.runtime.block_on(fresh().token(self.client, deadline())).unwrap();
        let fetch = |provider: TokenProvider| self.runtime.block_on(provider.token(self.client, deadline())).unwrap();
        group.bench_function(format!("{name}_hit"), |b| b.iter_batched(fresh, fetch, BatchSize::SmallInput));
        group.bench_function(format!("{name}_miss"), |b| {
            b.iter_batched(
                || {
                    self.runtime.block_on(store.remove_if(&key, shared_token.expose_secret())).unwrap();
                    fresh()
                },
                fetch,
                BatchSize::SmallInput,
            )
        });
    }
}

criterion_group!(benches, token_acquisition);
criterion_main!(benches);
