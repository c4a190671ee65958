//! The composition: a [`Config`] becomes what one container holds across invocations, built once at cold start.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::call::PluginCaller;
use crate::call::TokenSource;
use crate::config::{ApiSecuritySetting, Config, Credentials, TokenCache};
use crate::error::Error;
use crate::platform::Platform;
use crate::rollout::Rollouts;
use crate::token::{DurableStore, DynamoStore, MemoryStore, RedisStore, TokenProvider, TokenStore};
use crate::wechat::security::ApiSecurity;
use crate::wechat::WeChatClient;

/// What one container holds across invocations, built once from its [`Config`]: the call path (HTTP client and token
/// source) and the edges' two settings. The ways in are functions over it ([`crate::edge::handle_payload`],
/// [`crate::edge::handle`], [`crate::edge::invoke`]); a library user calls [`PluginCaller::execute`] on
/// [`App::caller`].
pub struct App {
    /// The one call path: event → token → WeChat → result.
    pub caller: PluginCaller,
    /// `WX_GATEWAY_KEY`: the key a gateway request without IAM must carry.
    pub gateway_key: Option<SecretString>,
    /// `WX_METRICS`: whether each invocation's line carries its EMF metrics.
    pub metrics: bool,
    /// A third-party platform's rollouts (its shared store and its queue); `None` for one mini program's function,
    /// and for a platform without a shared store (`WX_TOKEN_CACHE=memory`).
    pub rollouts: Option<Rollouts>,
}

impl App {
    /// The container's state for `config`, whose credentials must be complete (see [`Config::resolve`]).
    pub fn new(config: &Config) -> Result<App, Error> {
        let client = WeChatClient::new(&config.api_base).map_err(|e| Error::Config(e.to_string()))?;
        let client = match api_security(config)? {
            Some(security) => client.with_security(security),
            None => client,
        };
        let store_error = |why| Error::Config(format!("WX_TOKEN_CACHE: {why}"));
        // The fleet's store: the token cache, and a platform's durable state.
        let fleet: Option<(Arc<dyn TokenStore>, Arc<dyn DurableStore>)> = match &config.token_cache {
            TokenCache::Memory => None,
            TokenCache::Redis(url) => Some(both(RedisStore::new(url.expose_secret()).map_err(store_error)?)),
            TokenCache::DynamoDb { table } => Some(both(DynamoStore::from_env(table).map_err(store_error)?)),
        };
        let shared = fleet.as_ref().map(|(tokens, _)| tokens.clone());
        let mut rollouts = None;
        let tokens = match &config.credentials {
            Credentials::Fixed { token, .. } => TokenSource::Fixed(token.clone()),
            Credentials::App { appid, secret } => {
                TokenSource::Fetched(TokenProvider::new(config.token_endpoint, appid, secret.clone(), shared))
            }
            Credentials::Platform(platform) => {
                let env = |name: &str| std::env::var(name).ok();
                let durable: Arc<dyn DurableStore> = match fleet {
                    Some((_, durable)) => {
                        // A rollout's slots must be the fleet's, or two instances could both change one program.
                        rollouts = Some(Rollouts::new(&platform.appid, durable.clone(), &config.rollouts, env)?);
                        durable
                    }
                    None => {
                        tracing::warn!(
                            "third-party platform with WX_TOKEN_CACHE=memory: the ticket and refresh tokens live in \
                             this instance only and die with it; set a redis:// URL or dynamodb://<table> for any \
                             real deployment"
                        );
                        Arc::new(MemoryStore::default())
                    }
                };
                TokenSource::Platform(Platform::new(platform, durable, shared)?)
            }
            Credentials::Stored { secret, .. } => {
                return Err(Error::Config(format!("{} has not been read yet (Config::resolve)", secret.variable())))
            }
        };
        let caller = PluginCaller::new(client, tokens);
        Ok(App { caller, gateway_key: config.gateway_key.clone(), metrics: config.metrics, rollouts })
    }

    /// The cold start: the environment read once, a stored secret fetched, the state built.
    pub async fn from_env() -> Result<App, Error> {
        let config = Config::from_env()?.resolve(|name| std::env::var(name).ok()).await?;
        App::new(&config)
    }
}

/// One shared store as both the fleet's token cache and the durable store.
fn both<S: TokenStore + DurableStore + 'static>(store: S) -> (Arc<dyn TokenStore>, Arc<dyn DurableStore>) {
    let store = Arc::new(store);
    (store.clone(), store)
}

/// API security as configured, made as the appid the calls are signed with: the mini program's, or (a third-party
/// platform acting for its mini programs) the platform's own.
fn api_security(config: &Config) -> Result<Option<ApiSecurity>, Error> {
    let keys = match &config.api_security {
        ApiSecuritySetting::Off { ignored } => {
            if !ignored.is_empty() {
                tracing::warn!(
                    ignored = %ignored.join(", "),
                    "WX_API_SECURITY=off: plugin calls go out plain; the API security settings still set are ignored"
                );
            }
            return Ok(None);
        }
        ApiSecuritySetting::On(keys) => keys.clone(),
        ApiSecuritySetting::Stored { secret, .. } => {
            return Err(Error::Config(format!("{} has not been read yet (Config::resolve)", secret.variable())))
        }
    };
    let appid = match &config.credentials {
        Credentials::App { appid, .. } | Credentials::Stored { appid, .. } => appid,
        Credentials::Fixed { appid: Some(appid), .. } => appid,
        Credentials::Platform(platform) => &platform.appid,
        Credentials::Fixed { appid: None, .. } => {
            return Err(Error::Config("WX_API_SECURITY=on needs WX_APPID beside WX_ACCESS_TOKEN".into()))
        }
    };
    Ok(Some(ApiSecurity::new(keys, appid)))
}
