//! The app secret kept in AWS Secrets Manager or SSM Parameter Store, read once at cold start through the AWS
//! Parameters and Secrets Lambda Extension: plain HTTP on localhost, authenticated with the function's own session
//! token, so no AWS SDK is needed.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::Value;

/// Where a secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredSecret {
    /// A Secrets Manager secret (ARN or name): its string, or its JSON's `secret` field.
    SecretsManager { id: String, variable: &'static str },
    /// An SSM parameter (a SecureString), decrypted.
    Parameter { name: String, variable: &'static str },
}

impl StoredSecret {
    /// The environment variable that named it, for messages.
    pub fn variable(&self) -> &'static str {
        match self {
            StoredSecret::SecretsManager { variable, .. } | StoredSecret::Parameter { variable, .. } => variable,
        }
    }
}

const DEFAULT_PORT: u16 = 2773;
/// The extension starts beside the function: wait this long for it to answer at all.
const STARTUP_WAIT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// A secret (or the extension's error) is small; more than this is not read.
const MAX_ANSWER: usize = 64 * 1024;

/// Reads `stored` through the extension. `env` is the environment (the port and the session token come from it).
pub async fn fetch(stored: &StoredSecret, env: impl Fn(&str) -> Option<String>) -> Result<SecretString, String> {
    let variable = stored.variable();
    let port = match env("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT") {
        Some(port) => port.trim().parse::<u16>().map_err(|_| "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT is not a port")?,
        None => DEFAULT_PORT,
    };
    let session = env("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()).ok_or_else(|| {
        format!("{variable}: AWS_SESSION_TOKEN is not set, and the Parameters and Secrets extension needs it")
    })?;
    let (path, query) = match stored {
        StoredSecret::SecretsManager { id, .. } => ("secretsmanager/get", vec![("secretId", id.as_str())]),
        StoredSecret::Parameter { name, .. } => {
            ("systemsmanager/parameters/get", vec![("name", name.as_str()), ("withDecryption", "true")])
        }
    };
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {}", e.without_url()))?;
    let request = || {
        client
            .get(format!("http://localhost:{port}/{path}"))
            .query(&query)
            .header("X-Aws-Parameters-Secrets-Token", &session)
            .send()
    };
    let started = Instant::now();
    // While the extension starts (refused connections) or is throttled (5xx), try again for a short while.
    let mut response = loop {
        let retry = |done: bool| !done && started.elapsed() < STARTUP_WAIT;
        match request().await {
            Ok(response) if retry(!response.status().is_server_error()) => {}
            Ok(response) => break response,
            Err(e) if retry(!e.is_connect()) => {}
            Err(e) if e.is_timeout() => {
                return Err(format!("{variable}: the Parameters and Secrets extension did not answer in time"))
            }
            Err(e) => {
                return Err(format!(
                    "{variable}: cannot reach the Parameters and Secrets extension on port {port} ({}); is its layer \
                     attached?",
                    e.without_url()
                ))
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let status = response.status();
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("{variable}: {}", e.without_url()))? {
        if bytes.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("{variable}: the extension's answer is over {} KiB", MAX_ANSWER / 1024));
        }
        bytes.extend_from_slice(&chunk);
    }
    let body = String::from_utf8_lossy(&bytes);
    if !status.is_success() {
        // The extension's error text is AWS's message (not found, access denied…), never the secret.
        let excerpt: String = body.chars().take(200).collect();
        return Err(format!(
            "{variable}: the Parameters and Secrets extension answered HTTP {}: {excerpt}",
            status.as_u16()
        ));
    }
    let answer: Value =
        serde_json::from_str(&body).map_err(|_| format!("{variable}: the extension's answer is not JSON"))?;
    let text = match stored {
        StoredSecret::SecretsManager { .. } => answer["SecretString"].as_str(),
        StoredSecret::Parameter { .. } => answer["Parameter"]["Value"].as_str(),
    }
    .ok_or_else(|| format!("{variable}: the extension's answer holds no string value"))?;
    secret_in(text).map_err(|why| format!("{variable}: {why}"))
}

/// A secret string is the secret itself, or JSON whose `secret` field is.
fn secret_in(text: &str) -> Result<SecretString, String> {
    let secret = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => match fields.get("secret") {
            Some(Value::String(s)) => s.trim().to_owned(),
            _ => return Err("the secret is JSON without a string field \"secret\"".to_owned()),
        },
        _ => text.trim().to_owned(),
    };
    if secret.is_empty() {
        return Err("the secret is empty".to_owned());
    }
    Ok(secret.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_secret_is_plain_text_or_the_secret_field_of_json() {
        assert_eq!(secret_in("abc123\n").unwrap().expose_secret(), "abc123");
        assert_eq!(secret_in(r#"{"secret":"abc123","note":"x"}"#).unwrap().expose_secret(), "abc123");
        assert!(secret_in(r#"{"appsecret":"abc123"}"#).unwrap_err().contains("\"secret\""));
        assert!(secret_in("  ").unwrap_err().contains("empty"));
    }
}
