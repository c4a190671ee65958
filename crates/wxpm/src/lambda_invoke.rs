//! `--function`: a deployed function driven through Lambda's Invoke API, with the credentials and region the AWS CLI
//! would use, signed by the official `aws-sigv4` crate (wxpm is not in the artefact, so its size does not matter).

use std::process::Command;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4::SigningParams;
use serde_json::Value;

/// Our function stops at its own timeout (seconds); Lambda's 15 minutes would leave a lost call hanging that long.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Enough of an AWS error message to act on; the rest is noise in a terminal.
const MESSAGE_CHARS: usize = 500;

/// Why a call gave no answer.
#[derive(Debug)]
pub enum Failure {
    /// The function threw: Lambda's `{errorType, errorMessage}`.
    Thrown { error_type: String, error_message: String },
    /// The call never reached the function, or Lambda (or our side) refused it.
    Call(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Our function's errorMessage is wx-server-sdk's `{"errCode","errMsg"}`: its errMsg reads better alone.
            Failure::Thrown { error_type, error_message } => match serde_json::from_str::<Value>(error_message) {
                Ok(thrown) if thrown["errMsg"].is_string() => {
                    write!(
                        f,
                        "{error_type}: {} (errCode {})",
                        thrown["errMsg"].as_str().unwrap_or_default(),
                        thrown["errCode"]
                    )
                }
                _ => write!(f, "{error_type}: {error_message}"),
            },
            Failure::Call(why) => f.write_str(why),
        }
    }
}

struct Credentials {
    key_id: String,
    secret: String,
    token: Option<String>,
}

/// One function's Invoke endpoint, and how to sign for it.
pub struct LambdaInvoke {
    http: reqwest::Client,
    url: String,
    region: String,
    credentials: Credentials,
}

impl LambdaInvoke {
    /// The endpoint: `endpoint`, else AWS_ENDPOINT_URL_LAMBDA, else AWS_ENDPOINT_URL, else AWS's for the region.
    pub fn new(function: &str, endpoint: Option<&str>, profile: Option<&str>) -> Result<LambdaInvoke, String> {
        if function.trim().is_empty() {
            return Err("--function must name a function (its name or ARN)".into());
        }
        let profile = profile.filter(|p| !p.trim().is_empty());
        let region = region(profile)?;
        let credentials = credentials(profile)?;
        let endpoint = endpoint
            .map(str::to_owned)
            .or_else(|| env("AWS_ENDPOINT_URL_LAMBDA"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| default_endpoint(&region));
        let parsed =
            reqwest::Url::parse(&endpoint).map_err(|e| format!("the endpoint URL {endpoint} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!("the endpoint URL {endpoint} must be http:// or https:// and name a host"));
        }
        let url = format!("{}/2015-03-31/functions/{}/invocations", endpoint.trim_end_matches('/'), encode(function));
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(LambdaInvoke { http, url, region, credentials })
    }

    /// Invokes the function on `payload` and waits for its answer.
    pub async fn invoke(&self, payload: &Value) -> Result<Value, Failure> {
        let body = serde_json::to_vec(payload).unwrap_or_default();
        let c = &self.credentials;
        let identity =
            aws_credential_types::Credentials::new(&c.key_id, &c.secret, c.token.clone(), None, "wxpm").into();
        let params = SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("lambda")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Failure::Call(format!("cannot sign the call: {e}")))?
            .into();
        let headers = [("content-type", "application/json")];
        let signable = SignableRequest::new("POST", &self.url, headers.into_iter(), SignableBody::Bytes(&body))
            .map_err(|e| Failure::Call(format!("cannot sign the call: {e}")))?;
        let (instructions, _) =
            sign(signable, &params).map_err(|e| Failure::Call(format!("cannot sign the call: {e}")))?.into_parts();
        let mut request = self.http.post(&self.url).header("content-type", "application/json").body(body);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| Failure::Call(self.redact(&format!("Lambda Invoke: {e}"))))?;
        let status = response.status();
        let headers = response.headers().clone();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::Call(self.redact(&format!("Lambda Invoke: reading the answer: {e}"))))?;
        if !status.is_success() {
            let redact = |text: &str| self.redact(text);
            return Err(Failure::Call(aws_error(status, header("x-amzn-errortype"), &bytes, redact)));
        }
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Failure::Call(format!("Lambda Invoke: the function's answer is not JSON ({e})")))?;
        if header("x-amz-function-error").is_some() {
            let text = |field: &str| answer.get(field).and_then(Value::as_str).map(str::to_owned);
            return Err(Failure::Thrown {
                error_type: self.redact(&text("errorType").unwrap_or_else(|| "Unhandled".into())),
                error_message: self.redact(&text("errorMessage").unwrap_or_else(|| answer.to_string())),
            });
        }
        Ok(answer)
    }

    /// Hides our own credentials in whatever came back: some AWS errors quote the request they could not verify.
    fn redact(&self, text: &str) -> String {
        let c = &self.credentials;
        [Some(&c.key_id), Some(&c.secret), c.token.as_ref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .fold(text.to_owned(), |text, secret| text.replace(secret.as_str(), "***"))
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The AWS CLI's region: the environment's, else the profile's.
fn region(profile: Option<&str>) -> Result<String, String> {
    let region = match env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        Some(region) => region,
        None => aws_cli(&["configure", "get", "region"], profile)
            .ok()
            .map(|out| out.trim().to_owned())
            .filter(|r| !r.is_empty())
            .ok_or("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or the profile's with `aws configure`")?,
    };
    // It becomes part of a host name.
    if !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(format!("the AWS region {region:?} is not a region name"));
    }
    Ok(region)
}

/// The AWS CLI's credentials: the environment's keys, unless a profile was named on the command line (the CLI's own
/// precedence); else whatever the CLI resolves (SSO, assumed roles, credential processes) through `export-credentials`.
fn credentials(profile: Option<&str>) -> Result<Credentials, String> {
    if profile.is_none() {
        if let (Some(key_id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            return Ok(Credentials { key_id, secret, token: env("AWS_SESSION_TOKEN") });
        }
    }
    let exported = aws_cli(&["configure", "export-credentials", "--format", "process"], profile).map_err(|why| {
        format!("no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set, and the AWS CLI gave none ({why})")
    })?;
    // Never echo the output: it is the credentials.
    let exported: Value = serde_json::from_str(&exported)
        .map_err(|_| "no AWS credentials: `aws configure export-credentials` did not answer JSON".to_owned())?;
    let field = |name: &str| exported.get(name).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_owned);
    match (field("AccessKeyId"), field("SecretAccessKey")) {
        (Some(key_id), Some(secret)) => Ok(Credentials { key_id, secret, token: field("SessionToken") }),
        _ => {
            Err("no AWS credentials: `aws configure export-credentials` gave no AccessKeyId and SecretAccessKey".into())
        }
    }
}

/// Runs `aws <args> [--profile P]`: its stdout, or why not (its last line on stderr, which names no secret).
fn aws_cli(args: &[&str], profile: Option<&str>) -> Result<String, String> {
    let mut command = Command::new("aws");
    command.args(args);
    if let Some(profile) = profile {
        command.args(["--profile", profile]);
    }
    let out = command.output().map_err(|e| format!("cannot run `aws`: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim();
        return Err(format!("`aws {}` failed: {last}", args.join(" ")));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("`aws {}` did not answer UTF-8", args.join(" ")))
}

fn default_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    format!("https://lambda.{region}.{suffix}")
}

/// A name or an ARN as one path segment: an ARN's colons encoded, as the AWS CLI sends them.
fn encode(function: &str) -> String {
    let mut out = String::with_capacity(function.len());
    for b in function.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Lambda's own refusal: the status, its error type and message (`{"Type":…,"message":…}` or `{"Message":…}`).
/// The error, its message cleaned by `redact` before it is cut (a cut could leave part of a credential).
fn aws_error(
    status: reqwest::StatusCode,
    error_type: Option<String>,
    body: &[u8],
    redact: impl Fn(&str) -> String,
) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| parsed.as_ref()?.get(name)?.as_str().map(str::to_owned);
    let kind = error_type
        .map(|t| t.split(':').next().unwrap_or_default().to_owned())
        .or_else(|| field("__type"))
        .filter(|t| !t.is_empty());
    let message = field("message").or_else(|| field("Message")).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        text.trim().to_owned()
    });
    let message: String = redact(&message).chars().take(MESSAGE_CHARS).collect();
    match kind {
        Some(kind) => format!("Lambda Invoke answered HTTP {}: {kind}: {message}", status.as_u16()),
        None => format!("Lambda Invoke answered HTTP {}: {message}", status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arn_is_one_path_segment() {
        assert_eq!(encode("wx-plugin-manager"), "wx-plugin-manager");
        assert_eq!(
            encode("arn:aws:lambda:cn-north-1:123456789012:function:wx:live"),
            "arn%3Aaws%3Alambda%3Acn-north-1%3A123456789012%3Afunction%3Awx%3Alive"
        );
    }

    #[test]
    fn china_regions_have_their_own_domain() {
        assert_eq!(default_endpoint("cn-northwest-1"), "https://lambda.cn-northwest-1.amazonaws.com.cn");
        assert_eq!(default_endpoint("eu-west-1"), "https://lambda.eu-west-1.amazonaws.com");
    }

    #[test]
    fn aws_errors_show_their_type_and_message() {
        let body = br#"{"Type":"User","message":"Function not found: arn:aws:lambda:eu-west-1:1:function:nope"}"#;
        let text = aws_error(
            reqwest::StatusCode::NOT_FOUND,
            Some("ResourceNotFoundException:http://internal.amazon.com/coral/".into()),
            body,
            str::to_owned,
        );
        assert_eq!(
            text,
            "Lambda Invoke answered HTTP 404: ResourceNotFoundException: Function not found: \
             arn:aws:lambda:eu-west-1:1:function:nope"
        );
        let text = aws_error(reqwest::StatusCode::FORBIDDEN, None, br#"{"Message":"denied"}"#, str::to_owned);
        assert_eq!(text, "Lambda Invoke answered HTTP 403: denied");
    }
}
