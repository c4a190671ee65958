//! The environment, read once at cold start into a typed configuration.

mod api_security;

use secrecy::{ExposeSecret, SecretString};

use crate::error::Error;
use crate::secrets::StoredSecret;
pub use api_security::ApiSecuritySetting;

/// WeChat's API origin, unless `WX_API_BASE` names another (the emulator, a proxy).
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
/// A shorter gateway key could be guessed.
const MIN_GATEWAY_KEY: usize = 16;

/// Which WeChat endpoint issues access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpoint {
    /// `POST /cgi-bin/stable_token`: one token shared by every caller, renewed by WeChat with an overlap.
    Stable,
    /// `GET /cgi-bin/token`: a new token on every call, the previous one dying 5 minutes later.
    Classic,
}

/// Where access tokens are cached.
#[derive(Debug, Clone)]
pub enum TokenCache {
    /// In the container's memory.
    Memory,
    /// In Redis, shared by every instance (the URL may carry a password).
    Redis(SecretString),
    /// In a DynamoDB table, shared by every instance (`dynamodb://<table>`; region and credentials from the AWS
    /// environment).
    DynamoDb {
        /// The table's name.
        table: String,
    },
}

/// A secret given in the environment, or the place it is kept.
#[derive(Debug)]
pub enum Secret {
    /// The value itself (`WX_SECRET`, `WX_COMPONENT_SECRET`).
    Given(SecretString),
    /// Kept in Secrets Manager or SSM (`…_ARN`, `…_PARAMETER`), read once by [`Config::resolve`].
    Stored(StoredSecret),
}

/// A third-party platform (`WX_COMPONENT_*`): the function acts for every mini program that authorised it.
#[derive(Debug)]
pub struct PlatformConfig {
    /// The platform's (component's) appid.
    pub appid: String,
    /// The platform's AppSecret (`WX_COMPONENT_SECRET`, or where it is kept).
    pub secret: Secret,
    /// The message-check token of the pushes' signatures.
    pub token: SecretString,
    /// The 43-character EncodingAESKey, and the one before it while the console's key rotation settles.
    pub aes_key: SecretString,
    /// `WX_COMPONENT_AES_KEY_PREVIOUS`: pushes sealed with it are still opened during a rotation.
    pub previous_aes_key: Option<SecretString>,
}

/// Whose tokens the function calls WeChat with, and how it gets them.
#[derive(Debug)]
pub enum Credentials {
    /// The mini program's appid and secret: tokens are fetched and refreshed.
    App {
        /// `WX_APPID`.
        appid: String,
        /// `WX_SECRET`: the mini program's AppSecret.
        secret: SecretString,
    },
    /// The appid, with the secret still in Secrets Manager or SSM: [`Config::resolve`] reads it.
    Stored {
        /// `WX_APPID`.
        appid: String,
        /// `WX_SECRET_ARN` or `WX_SECRET_PARAMETER`.
        secret: StoredSecret,
    },
    /// A token from elsewhere, used as it is.
    Fixed {
        /// `WX_ACCESS_TOKEN`.
        token: SecretString,
        /// `WX_APPID`, when given beside it (API security signs with it).
        appid: Option<String>,
    },
    /// A third-party platform's settings: tokens come from its ticket and its authorizers' refresh tokens.
    Platform(PlatformConfig),
}

/// The function's settings, read from the environment once per container.
#[derive(Debug)]
pub struct Config {
    /// Whose tokens, and how they are had.
    pub credentials: Credentials,
    /// Without a trailing slash.
    pub api_base: String,
    /// `WX_TOKEN_ENDPOINT`: `stable` (the default) or `classic`.
    pub token_endpoint: TokenEndpoint,
    /// `WX_TOKEN_CACHE`: `memory` (the default), a Redis URL, or `dynamodb://<table>`.
    pub token_cache: TokenCache,
    /// The key a gateway request may present as `Authorization: Bearer <key>`.
    pub gateway_key: Option<SecretString>,
    /// One CloudWatch Embedded Metric Format line per invocation.
    pub metrics: bool,
    /// `WX_API_SECURITY` and its keys: encrypted and signed plugin calls.
    pub api_security: ApiSecuritySetting,
    /// `WX_ROLLOUT_*`: a third-party platform's rollouts over its queue.
    pub rollouts: RolloutSettings,
}

/// How a platform's rollouts run (`WX_ROLLOUT_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutSettings {
    /// `WX_ROLLOUT_QUEUE_URL`: the queue a rollout's messages go to; without it no rollout starts.
    pub queue_url: Option<String>,
    /// `WX_ROLLOUT_MAX_RECEIVES` (5): the dead-letter queue's `maxReceiveCount`, so a record knows its last attempt.
    pub max_receives: u32,
    /// `WX_ROLLOUT_BATCH_CONCURRENCY` (4): the records of one queue batch run at once.
    pub batch_concurrency: usize,
    /// `WX_ROLLOUT_TTL_DAYS` (30): how long a rollout's records are kept.
    pub keep_days: u32,
}

impl Config {
    /// Reads the process's environment (see [`Config::from_lookup`]).
    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads a secret kept in Secrets Manager or SSM (through the Lambda extension), so that the credentials are
    /// complete. `env` gives the extension's port and the session token.
    pub async fn resolve(mut self, env: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        match &mut self.credentials {
            Credentials::Stored { appid, secret } => {
                let secret = crate::secrets::fetch(secret, &env).await.map_err(|e| Error::Config(e.to_string()))?;
                self.credentials = Credentials::App { appid: appid.clone(), secret };
            }
            Credentials::Platform(platform) => {
                if let Secret::Stored(stored) = &platform.secret {
                    platform.secret = Secret::Given(
                        crate::secrets::fetch(stored, &env).await.map_err(|e| Error::Config(e.to_string()))?,
                    );
                }
            }
            Credentials::App { .. } | Credentials::Fixed { .. } => {}
        }
        if let ApiSecuritySetting::Stored { secret, given } = &self.api_security {
            let text = crate::secrets::fetch_text(secret, &env).await.map_err(|e| Error::Config(e.to_string()))?;
            let keys = api_security::keys_from_secret(text.expose_secret(), given, secret.variable())?;
            self.api_security = ApiSecuritySetting::On(std::sync::Arc::new(keys));
        }
        Ok(self)
    }

    /// Reads the configuration through `lookup` (the environment, or a test's map). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let bad = |why: String| Error::Config(why);

        let credentials = credentials(&get)?;

        let api_base = api_base(&get)?;

        let token_endpoint = match get("WX_TOKEN_ENDPOINT").as_deref() {
            None | Some("stable") => TokenEndpoint::Stable,
            Some("classic") => TokenEndpoint::Classic,
            Some(_) => return Err(bad("WX_TOKEN_ENDPOINT must be stable or classic".to_owned())),
        };

        let token_cache = token_cache(get("WX_TOKEN_CACHE").as_deref())?;

        let gateway_key = match get("GATEWAY_API_KEY") {
            Some(key) if key.len() < MIN_GATEWAY_KEY || key.contains(char::is_whitespace) => {
                return Err(bad(format!(
                    "GATEWAY_API_KEY must be at least {MIN_GATEWAY_KEY} characters, without spaces"
                )))
            }
            key => key.map(SecretString::from),
        };

        let metrics = match get("WX_METRICS").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(_) => return Err(bad("WX_METRICS must be on or off".to_owned())),
        };

        let api_security = api_security::setting(&get)?;
        if !matches!(api_security, ApiSecuritySetting::Off { .. })
            && matches!(credentials, Credentials::Fixed { appid: None, .. })
        {
            return Err(bad("WX_API_SECURITY=on signs every call with the mini program's appid: set WX_APPID beside \
                            WX_ACCESS_TOKEN"
                .into()));
        }

        let rollouts = rollout_settings(&get)?;

        Ok(Config { credentials, api_base, token_endpoint, token_cache, gateway_key, metrics, api_security, rollouts })
    }
}

/// `WX_ROLLOUT_*`, each number within its bounds.
fn rollout_settings(get: &impl Fn(&str) -> Option<String>) -> Result<RolloutSettings, Error> {
    let number = |name: &str, default: u32, range: std::ops::RangeInclusive<u32>| match get(name) {
        None => Ok(default),
        Some(text) => text.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| {
            Error::Config(format!("{name} must be a whole number from {} to {}", range.start(), range.end()))
        }),
    };
    let queue_url = get("WX_ROLLOUT_QUEUE_URL");
    let is_http_url = |url: &str| reqwest::Url::parse(url).is_ok_and(|url| matches!(url.scheme(), "http" | "https"));
    if queue_url.as_deref().is_some_and(|url| !is_http_url(url)) {
        return Err(Error::Config("WX_ROLLOUT_QUEUE_URL must be the queue's http(s) URL".to_owned()));
    }
    Ok(RolloutSettings {
        queue_url,
        max_receives: number("WX_ROLLOUT_MAX_RECEIVES", 5, 1..=1000)?,
        batch_concurrency: number("WX_ROLLOUT_BATCH_CONCURRENCY", 4, 1..=10)? as usize,
        keep_days: number("WX_ROLLOUT_TTL_DAYS", 30, 1..=365)?,
    })
}

/// Whose tokens the function uses: a platform's, an app's (its secret given or stored), or a fixed token.
fn credentials(get: &impl Fn(&str) -> Option<String>) -> Result<Credentials, Error> {
    let bad = |why: String| Error::Config(why);
    let platform = platform_config(&get)?;
    let secret = secret(&get, "WX_SECRET")?;
    Ok(match (get("WX_ACCESS_TOKEN"), get("WX_APPID"), secret) {
        (token, appid, secret) if platform.is_some() => {
            if token.is_some() || appid.is_some() || secret.is_some() {
                return Err(bad("a third-party platform (WX_COMPONENT_APPID) acts for the mini programs that \
                                authorised it: leave WX_APPID, WX_SECRET* and WX_ACCESS_TOKEN unset"
                    .into()));
            }
            Credentials::Platform(platform.expect("checked by the guard"))
        }
        (Some(_), _, Some(_)) => {
            return Err(bad("set either WX_ACCESS_TOKEN or WX_APPID and its secret, not both".into()))
        }
        (Some(token), appid, None) => Credentials::Fixed { token: token.into(), appid },
        (None, Some(appid), Some(Secret::Given(secret))) => Credentials::App { appid, secret },
        (None, Some(appid), Some(Secret::Stored(secret))) => Credentials::Stored { appid, secret },
        (None, Some(_), None) => {
            return Err(bad(
                "WX_SECRET is not set (the mini program's AppSecret; or WX_SECRET_ARN, WX_SECRET_PARAMETER)".into(),
            ))
        }
        (None, None, Some(secret)) => {
            let name = match &secret {
                Secret::Given(_) => "WX_SECRET",
                Secret::Stored(stored) => stored.variable(),
            };
            return Err(bad(format!("WX_APPID is not set (the mini program's AppID, to go with {name})")));
        }
        (None, None, None) => {
            return Err(bad("WX_APPID and WX_SECRET are not set (or set WX_ACCESS_TOKEN to use a token as it is, or \
                 WX_COMPONENT_APPID and its settings to act as a third-party platform)"
                .into()))
        }
    })
}

/// `WX_TOKEN_CACHE`: `memory` (the default), a Redis URL, or `dynamodb://<table>`.
fn token_cache(value: Option<&str>) -> Result<TokenCache, Error> {
    let forms = "memory, a redis:// (or rediss://) URL, or dynamodb://<table>";
    Ok(match value {
        None | Some("memory") => TokenCache::Memory,
        Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => TokenCache::Redis(url.into()),
        Some(url) if url.starts_with("dynamodb://") => {
            let table = &url["dynamodb://".len()..];
            // DynamoDB's rule for table names.
            let valid = (3..=255).contains(&table.len())
                && table.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !valid {
                return Err(Error::Config(format!(
                    "WX_TOKEN_CACHE=dynamodb://<table> needs a DynamoDB table name: 3 to 255 letters, digits, _ . or - \
                     (the forms are {forms})"
                )));
            }
            TokenCache::DynamoDb { table: table.to_owned() }
        }
        Some(_) => return Err(Error::Config(format!("WX_TOKEN_CACHE must be {forms}"))),
    })
}

/// `WX_API_BASE`: WeChat's origin, or the emulator's, or a proxy's.
fn api_base(get: &impl Fn(&str) -> Option<String>) -> Result<String, Error> {
    let bad = |why: String| Error::Config(why);
    let api_base = get("WX_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
    let parsed = reqwest::Url::parse(&api_base).map_err(|e| bad(format!("WX_API_BASE is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() || parsed.host().is_none() {
        // The value is not echoed: a URL may carry credentials.
        return Err(bad("WX_API_BASE must be an http(s) URL without a query".to_owned()));
    }
    Ok(api_base.trim_end_matches('/').to_owned())
}

/// The secret `base` names: given as `base`, or kept in Secrets Manager (`base_ARN`) or SSM (`base_PARAMETER`).
fn secret(get: &impl Fn(&str) -> Option<String>, base: &'static str) -> Result<Option<Secret>, Error> {
    // The names are spelled out (not built from `base`) so messages and lookups use &'static str.
    let (arn, parameter) = match base {
        "WX_SECRET" => ("WX_SECRET_ARN", "WX_SECRET_PARAMETER"),
        _ => ("WX_COMPONENT_SECRET_ARN", "WX_COMPONENT_SECRET_PARAMETER"),
    };
    let found: Vec<(&'static str, String)> =
        [base, arn, parameter].into_iter().filter_map(|name| get(name).map(|value| (name, value))).collect();
    if found.len() > 1 {
        let names: Vec<&str> = found.iter().map(|(name, _)| *name).collect();
        let names = names.join(" and ");
        return Err(Error::Config(format!("set only one of {base}, {arn}, {parameter}, not {names}")));
    }
    Ok(found.into_iter().next().map(|(name, value)| match name {
        n if n == base => Secret::Given(value.into()),
        n if n == arn => Secret::Stored(StoredSecret::SecretsManager { id: value, variable: arn }),
        _ => Secret::Stored(StoredSecret::Parameter { name: value, variable: parameter }),
    }))
}

/// The `WX_COMPONENT_*` settings, all or none of them.
fn platform_config(get: &impl Fn(&str) -> Option<String>) -> Result<Option<PlatformConfig>, Error> {
    let bad = |why: String| Error::Config(why);
    let secret = secret(get, "WX_COMPONENT_SECRET")?;
    let (appid, token, aes_key) = (get("WX_COMPONENT_APPID"), get("WX_COMPONENT_TOKEN"), get("WX_COMPONENT_AES_KEY"));
    let previous_aes_key = get("WX_COMPONENT_AES_KEY_PREVIOUS");
    let any = appid.is_some() || secret.is_some() || token.is_some() || aes_key.is_some() || previous_aes_key.is_some();
    if !any {
        return Ok(None);
    }
    let missing: Vec<&str> = [
        ("WX_COMPONENT_APPID", appid.is_none()),
        ("WX_COMPONENT_SECRET (or _ARN, _PARAMETER)", secret.is_none()),
        ("WX_COMPONENT_TOKEN", token.is_none()),
        ("WX_COMPONENT_AES_KEY", aes_key.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    if !missing.is_empty() {
        return Err(bad(format!("a third-party platform needs {} too", missing.join(", "))));
    }
    let appid = appid.expect("checked above");
    if !crate::wechat::is_appid(&appid) {
        return Err(bad("WX_COMPONENT_APPID is not an appid (letters, digits, _ and -)".to_owned()));
    }
    let key_ok = |key: &str| key.len() == 43 && key.bytes().all(|b| b.is_ascii_alphanumeric());
    for (name, key) in
        [("WX_COMPONENT_AES_KEY", aes_key.as_deref()), ("WX_COMPONENT_AES_KEY_PREVIOUS", previous_aes_key.as_deref())]
    {
        if key.is_some_and(|k| !key_ok(k)) {
            return Err(bad(format!("{name} must be the console's EncodingAESKey: 43 letters and digits")));
        }
    }
    Ok(Some(PlatformConfig {
        appid,
        secret: secret.expect("checked above"),
        token: token.expect("checked above").into(),
        aes_key: aes_key.expect("checked above").into(),
        previous_aes_key: previous_aes_key.map(SecretString::from),
    }))
}

#[cfg(test)]
mod tests;
