//! The app secret kept in AWS Secrets Manager or SSM Parameter Store, read once at cold start through the AWS
//! Parameters and Secrets Lambda Extension: plain HTTP on localhost, authenticated with the function's own session
//! token, so no AWS SDK is needed.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

/// Where a secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredSecret {
    /// A Secrets Manager secret (ARN or name): its string, or its JSON's `secret` field.
    SecretsManager {
        /// The secret's ARN or name.
        id: String,
        /// The environment variable that named it (`WX_SECRET_ARN`, …).
        variable: &'static str,
    },
    /// An SSM parameter (a SecureString), decrypted.
    Parameter {
        /// The parameter's name.
        name: String,
        /// The environment variable that named it (`WX_SECRET_PARAMETER`, …).
        variable: &'static str,
    },
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

/// Why a stored secret could not be read (never its value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT` holds no port number.
    #[error("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT is not a port")]
    BadPort,
    /// The HTTP client could not be built.
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
    /// The secret the variable names could not be had.
    #[error("{variable}: {problem}")]
    Unread {
        /// The environment variable that named the secret.
        variable: &'static str,
        /// What went wrong.
        problem: Problem,
    },
}

/// What went wrong reading one secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The extension authenticates the function by its session token.
    #[error("AWS_SESSION_TOKEN is not set, and the Parameters and Secrets extension needs it")]
    NoSession,
    /// The extension did not answer within the request timeout.
    #[error("the Parameters and Secrets extension did not answer in time")]
    Timeout,
    /// Nothing listens on the port (the layer is missing) or the exchange failed.
    #[error("cannot reach the Parameters and Secrets extension on port {port} ({why}); is its layer attached?")]
    Unreachable {
        /// The extension's port.
        port: u16,
        /// The failure, without the URL.
        why: String,
    },
    /// The answer broke off.
    #[error("{0}")]
    Broken(String),
    /// The answer is larger than a secret can be.
    #[error("the extension's answer is over {} KiB", MAX_ANSWER / 1024)]
    TooLarge,
    /// The extension refused: AWS's message (not found, access denied…), never the secret.
    #[error("the Parameters and Secrets extension answered HTTP {status}: {excerpt}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The first 200 characters of the extension's error text.
        excerpt: String,
    },
    /// The answer is not JSON.
    #[error("the extension's answer is not JSON")]
    NotJson,
    /// The answer is JSON without the secret's string.
    #[error("the extension's answer holds no string value")]
    NoString,
    /// The secret is JSON, but not with a string `secret` field.
    #[error("the secret is JSON without a string field \"secret\"")]
    NoSecretField,
    /// The secret is blank.
    #[error("the secret is empty")]
    Empty,
}

/// Secrets Manager's answer: the secret's string.
#[derive(Deserialize)]
struct SecretValue {
    #[serde(rename = "SecretString")]
    secret_string: Option<String>,
}

/// Parameter Store's answer: the parameter, decrypted.
#[derive(Deserialize)]
struct ParameterValue {
    #[serde(rename = "Parameter")]
    parameter: Option<Parameter>,
}

#[derive(Deserialize)]
struct Parameter {
    #[serde(rename = "Value")]
    value: Option<String>,
}

/// Reads `stored` through the extension: the secret string itself, or its JSON's `secret` field. `env` is the
/// environment (the port and the session token come from it).
pub async fn fetch(stored: &StoredSecret, env: impl Fn(&str) -> Option<String>) -> Result<SecretString, SecretError> {
    let text = fetch_text(stored, env).await?;
    secret_in(text.expose_secret()).map_err(|problem| SecretError::Unread { variable: stored.variable(), problem })
}

/// Reads `stored` through the extension, whole: a secret that is a JSON object of several values.
pub async fn fetch_text(
    stored: &StoredSecret,
    env: impl Fn(&str) -> Option<String>,
) -> Result<SecretString, SecretError> {
    let variable = stored.variable();
    let unread = |problem| SecretError::Unread { variable, problem };
    let port = match env("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT") {
        Some(port) => port.trim().parse::<u16>().map_err(|_| SecretError::BadPort)?,
        None => DEFAULT_PORT,
    };
    let session = env("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()).ok_or_else(|| unread(Problem::NoSession))?;
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| SecretError::Client(e.without_url().to_string()))?;
    let body = ask(&client, stored, port, &session).await.map_err(unread)?;
    let text = match stored {
        StoredSecret::SecretsManager { .. } => {
            serde_json::from_str::<SecretValue>(&body).map_err(|_| unread(Problem::NotJson))?.secret_string
        }
        StoredSecret::Parameter { .. } => serde_json::from_str::<ParameterValue>(&body)
            .map_err(|_| unread(Problem::NotJson))?
            .parameter
            .and_then(|p| p.value),
    };
    text.map(SecretString::from).ok_or_else(|| unread(Problem::NoString))
}

/// The extension's answer for `stored`: its body, once it answers with a success.
async fn ask(client: &reqwest::Client, stored: &StoredSecret, port: u16, session: &str) -> Result<String, Problem> {
    let (path, query) = match stored {
        StoredSecret::SecretsManager { id, .. } => ("secretsmanager/get", vec![("secretId", id.as_str())]),
        StoredSecret::Parameter { name, .. } => {
            ("systemsmanager/parameters/get", vec![("name", name.as_str()), ("withDecryption", "true")])
        }
    };
    let request = || {
        client
            .get(format!("http://localhost:{port}/{path}"))
            .query(&query)
            .header("X-Aws-Parameters-Secrets-Token", session)
            .send()
    };
    let started = Instant::now();
    // While the extension starts (refused connections) or is throttled (5xx), try again for a short while.
    let response = loop {
        let retry = |done: bool| !done && started.elapsed() < STARTUP_WAIT;
        match request().await {
            Ok(response) if retry(!response.status().is_server_error()) => {}
            Ok(response) => break response,
            Err(e) if retry(!e.is_connect()) => {}
            Err(e) if e.is_timeout() => return Err(Problem::Timeout),
            Err(e) => return Err(Problem::Unreachable { port, why: e.without_url().to_string() }),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let status = response.status();
    let body = read_capped(response).await?;
    if !status.is_success() {
        let excerpt: String = body.chars().take(200).collect();
        return Err(Problem::Refused { status: status.as_u16(), excerpt });
    }
    Ok(body)
}

/// The body, up to [`MAX_ANSWER`] bytes.
async fn read_capped(mut response: reqwest::Response) -> Result<String, Problem> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Problem::Broken(e.without_url().to_string()))? {
        if bytes.len() + chunk.len() > MAX_ANSWER {
            return Err(Problem::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A secret string is the secret itself, or JSON whose `secret` field is.
fn secret_in(text: &str) -> Result<SecretString, Problem> {
    let secret = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => match fields.get("secret") {
            Some(Value::String(s)) => s.trim().to_owned(),
            _ => return Err(Problem::NoSecretField),
        },
        _ => text.trim().to_owned(),
    };
    if secret.is_empty() {
        return Err(Problem::Empty);
    }
    Ok(secret.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_plain_text_or_the_secret_field_of_json() {
        assert_eq!(secret_in("abc123\n").unwrap().expose_secret(), "abc123");
        assert_eq!(secret_in(r#"{"secret":"abc123","note":"x"}"#).unwrap().expose_secret(), "abc123");
        assert!(secret_in(r#"{"appsecret":"abc123"}"#).unwrap_err().to_string().contains("\"secret\""));
        assert!(secret_in("  ").unwrap_err().to_string().contains("empty"));
    }
}
