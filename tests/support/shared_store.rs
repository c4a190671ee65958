//! A shared store for the fleet tests, either kind: a real `redis-server` or a real DynamoDB-compatible server
//! (dynalite), behind what those tests need of it.

use wx_plugin_manager::token::{DurableStore, TokenStore};

use super::dynalite::{self, Dynalite};
use testkit::redis::{self, RedisServer};

/// Each test, once per store: `on_both_stores!(a, b)` makes `redis::a` and `dynamodb::a`, each calling `super::a`
/// with a fresh store of its kind.
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod redis {
            $(#[test] fn $test() { super::$test($crate::support::shared_store::SharedStore::redis()) })*
        }
        mod dynamodb {
            $(#[test] fn $test() { super::$test($crate::support::shared_store::SharedStore::dynamodb()) })*
        }
    };
}
pub(crate) use on_both_stores;

pub enum SharedStore {
    Redis(RedisServer),
    DynamoDb(Dynalite),
}

impl SharedStore {
    pub fn redis() -> SharedStore {
        SharedStore::Redis(RedisServer::start())
    }

    pub fn dynamodb() -> SharedStore {
        SharedStore::DynamoDb(Dynalite::start())
    }

    /// The function's environment for it: `WX_TOKEN_CACHE`, and for DynamoDB its endpoint, region and credentials.
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            SharedStore::Redis(r) => vec![("WX_TOKEN_CACHE".into(), r.url())],
            SharedStore::DynamoDb(d) => {
                let mut env = vec![("WX_TOKEN_CACHE".to_owned(), d.token_cache())];
                env.extend(d.aws_env().into_iter().map(|(k, v)| (k.to_owned(), v)));
                env
            }
        }
    }

    /// What must never appear in the function's output: the Redis password, the AWS secret key and session token.
    pub fn secrets(&self) -> Vec<&'static str> {
        match self {
            SharedStore::Redis(_) => vec![redis::PASSWORD],
            SharedStore::DynamoDb(_) => vec![dynalite::SECRET_ACCESS_KEY, dynalite::SESSION_TOKEN],
        }
    }

    /// The warning an instance logs when the store fails it.
    pub fn unavailable_warning(&self) -> &'static str {
        match self {
            SharedStore::Redis(_) => "Redis token cache unavailable",
            SharedStore::DynamoDb(_) => "DynamoDB token cache unavailable",
        }
    }

    pub fn kill(&mut self) {
        match self {
            SharedStore::Redis(r) => r.kill(),
            SharedStore::DynamoDb(d) => d.kill(),
        }
    }

    /// Back, empty (neither keeps anything across a restart here).
    pub fn restart(&mut self) {
        match self {
            SharedStore::Redis(r) => r.restart(),
            SharedStore::DynamoDb(d) => d.restart(),
        }
    }

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
    }

    /// The shared token under `key`, if one is kept and not yet due.
    pub fn token(&self, key: &str) -> Option<String> {
        use secrecy::ExposeSecret;
        let loaded = match self {
            SharedStore::Redis(r) => {
                let raw = r.cli(&["GET", key]);
                return raw.split_once('|').map(|(_, token)| token.to_owned());
            }
            SharedStore::DynamoDb(d) => Self::run(async { d.store().load(key).await }),
        };
        loaded.unwrap().map(|t| t.value.expose_secret().to_owned())
    }

    /// Whether someone holds the refresh lease of `key`.
    pub fn lease_held(&self, key: &str) -> bool {
        match self {
            SharedStore::Redis(r) => !r.cli(&["GET", &format!("{key}:lock")]).is_empty(),
            SharedStore::DynamoDb(d) => Self::run(async {
                // Taking it tells: a held lease is refused; a free one is taken and given back at once.
                let store = d.store();
                match store.lock(key, std::time::Duration::from_secs(1)).await.unwrap() {
                    wx_plugin_manager::token::Lock::Taken => true,
                    wx_plugin_manager::token::Lock::Held(holder) => {
                        store.unlock(key, &holder).await.unwrap();
                        false
                    }
                }
            }),
        }
    }

    /// A durable value (a platform's ticket or refresh token).
    pub fn durable(&self, key: &str) -> Option<String> {
        match self {
            SharedStore::Redis(r) => Some(r.cli(&["GET", key])).filter(|v| !v.is_empty()),
            SharedStore::DynamoDb(d) => Self::run(async { d.store().get(key).await }).unwrap(),
        }
    }

    /// Loses a durable value, as a flush or a failover would.
    pub fn lose(&self, key: &str) {
        match self {
            SharedStore::Redis(r) => {
                r.cli(&["DEL", key]);
            }
            SharedStore::DynamoDb(d) => Self::run(async {
                let store = d.store();
                if let Some(value) = store.get(key).await.unwrap() {
                    assert!(store.delete_if(key, &value).await.unwrap());
                }
            }),
        }
    }
}
