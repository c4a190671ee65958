//! HTTP to WeChat: one `reqwest::Client` per container, every exchange bounded by the invocation's deadline, and
//! errors that never carry the URL (ours carry `access_token` and, on the classic endpoint, the secret).

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};

use serde::de::DeserializeSeed;

use std::sync::Arc;

use super::security::ApiSecurity;
use crate::case::{self, CamelKeys};
use crate::error::Failure;

/// Time kept back from the invocation's deadline to send the answer to Lambda.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(250);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// WeChat's answers are small; a bigger one is broken and not read further.
const MAX_ANSWER: usize = 1 << 20;
const EXCERPT: usize = 200;

/// Whether a broken answer may be quoted in the error: never for the token endpoints, whose body could hold a
/// token (a proxy's wrapper, a stray BOM before the JSON).
#[derive(Clone, Copy)]
enum Quote {
    Excerpt,
    Never,
}

/// How an answer's keys are read: as WeChat sent them, or already in the cloud call's camelCase (a plugin call's
/// answer is handed back that way; `errcode` and `errmsg` read the same either way).
#[derive(Clone, Copy)]
enum Keys {
    AsSent,
    Camel,
}

/// What a broken token answer is shown as, in place of its body.
pub const WITHHELD: &str = "(the token endpoint's answer, withheld: it is not a token answer)";

/// A WeChat answer: a JSON object, errcode included if WeChat sent one.
pub type Answer = Map<String, Value>;

/// One HTTP client for every exchange with WeChat: bounded by the deadline, never following redirects, its errors
/// never carrying a URL (ours hold the token).
#[derive(Debug, Clone)]
pub struct WeChatClient {
    http: reqwest::Client,
    base: String,
    /// The plugin endpoints' URLs, parsed once: parsing a URL costs more than the rest of building the request.
    plugin_urls: Vec<(&'static str, reqwest::Url)>,
    /// API security, when on: plugin calls are sealed and their answers opened.
    security: Option<Arc<ApiSecurity>>,
}

/// The paths every invocation calls.
const PLUGIN_PATHS: [&str; 2] = ["/wxa/plugin", "/wxa/devplugin"];

/// Why the client could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The TLS stack or the HTTP client could not be set up.
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
    /// `WX_API_BASE` and a plugin path do not make a URL.
    #[error("WX_API_BASE: {0}")]
    Base(String),
}

impl WeChatClient {
    /// A client of WeChat at `base` (`https://api.weixin.qq.com`, or the emulator's or a proxy's origin).
    pub fn new(base: &str) -> Result<WeChatClient, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_keepalive(Duration::from_secs(30))
            .tcp_nodelay(true)
            .user_agent(concat!("wx-plugin-manager/", env!("CARGO_PKG_VERSION")))
            // A redirect would carry the secret or the token (body and query) to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Build(e.without_url().to_string()))?;
        let base = base.trim_end_matches('/').to_owned();
        let mut plugin_urls = Vec::with_capacity(PLUGIN_PATHS.len());
        for path in PLUGIN_PATHS {
            let url = reqwest::Url::parse(&format!("{base}{path}")).map_err(|e| ClientError::Base(e.to_string()))?;
            plugin_urls.push((path, url));
        }
        Ok(WeChatClient { http, base, plugin_urls, security: None })
    }

    /// The same client with API security on for the plugin endpoints (token and component endpoints never use it).
    pub fn with_security(mut self, security: ApiSecurity) -> WeChatClient {
        self.security = Some(Arc::new(security));
        self
    }

    /// `POST {base}{path}?access_token=…` with a JSON body; the answer's keys come back in camelCase.
    pub async fn call(
        &self,
        path: &str,
        token: &SecretString,
        body: &Value,
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let mut url = match self.plugin_urls.iter().find(|(known, _)| *known == path) {
            Some((_, url)) => url.clone(),
            None => {
                reqwest::Url::parse(&format!("{}{path}", self.base)).map_err(|e| Failure::Network(e.to_string()))?
            }
        };
        url.query_pairs_mut().append_pair("access_token", token.expose_secret());
        match &self.security {
            None => self.exchange(self.http.post(url).json(body), deadline, Quote::Excerpt, Keys::Camel).await,
            Some(security) => self.sealed_call(security, path, url, body, deadline).await,
        }
    }

    /// A plugin call through API security: the body sealed and signed, the answer verified and opened.
    async fn sealed_call(
        &self,
        security: &ApiSecurity,
        path: &str,
        url: reqwest::Url,
        body: &Value,
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let empty = Map::new();
        let fields = body.as_object().unwrap_or(&empty);
        let sealed = security.seal(path, fields, unix_secs()).map_err(Failure::Unverified)?;
        let mut request = self.http.post(url).header(http::header::CONTENT_TYPE, "application/json").body(sealed.body);
        for (name, value) in sealed.headers {
            request = request.header(name, value);
        }
        let (headers, answer) = self.fetch(request, deadline).await?;
        let answer = security.open(path, &headers, &answer, unix_secs()).map_err(Failure::Unverified)?;
        Ok(case::convert_map(answer, case::snake_to_camel))
    }

    /// `POST {base}{path}` on the open platform's own endpoints (`/cgi-bin/component/…`), with the component token
    /// in the query when the endpoint takes one. The answers carry tokens and refresh tokens: never quoted.
    pub async fn component(
        &self,
        path: &str,
        component_token: Option<&SecretString>,
        body: &Value,
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(token) = component_token {
            request = request.query(&[("component_access_token", token.expose_secret())]);
        }
        self.exchange(request, deadline, Quote::Never, Keys::AsSent).await
    }

    /// `POST /cgi-bin/stable_token`, never with `force_refresh`.
    pub async fn stable_token(&self, appid: &str, secret: &SecretString, deadline: Instant) -> Result<Answer, Failure> {
        let body = json!({
            "grant_type": "client_credential",
            "appid": appid,
            "secret": secret.expose_secret(),
            "force_refresh": false,
        });
        let request = self.http.post(format!("{}/cgi-bin/stable_token", self.base)).json(&body);
        self.exchange(request, deadline, Quote::Never, Keys::AsSent).await
    }

    /// `GET /cgi-bin/token`.
    pub async fn classic_token(
        &self,
        appid: &str,
        secret: &SecretString,
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let request = self.http.get(format!("{}/cgi-bin/token", self.base)).query(&[
            ("grant_type", "client_credential"),
            ("appid", appid),
            ("secret", secret.expose_secret()),
        ]);
        self.exchange(request, deadline, Quote::Never, Keys::AsSent).await
    }

    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        deadline: Instant,
        quote: Quote,
        keys: Keys,
    ) -> Result<Answer, Failure> {
        let (_, body) = self.fetch(request, deadline).await?;
        // WeChat's JSON sometimes comes labelled text/plain: the label is not trusted either way.
        let read = match keys {
            Keys::AsSent => serde_json::from_slice(&body),
            Keys::Camel => {
                let mut json = serde_json::Deserializer::from_slice(&body);
                CamelKeys.deserialize(&mut json).and_then(|answer| json.end().map(|()| answer))
            }
        };
        match read {
            Ok(Value::Object(answer)) => Ok(answer),
            _ => Err(Failure::InvalidJson(match quote {
                Quote::Excerpt => excerpt(&body),
                Quote::Never => WITHHELD.to_owned(),
            })),
        }
    }

    /// Sends `request` within the deadline; an answer other than HTTP 200 is a failure, a 200's headers and body
    /// (at most [`MAX_ANSWER`] bytes) are read.
    async fn fetch(
        &self,
        request: reqwest::RequestBuilder,
        deadline: Instant,
    ) -> Result<(http::HeaderMap, bytes::Bytes), Failure> {
        let budget = time_left(deadline).ok_or(Failure::Timeout)?;
        let request = request.timeout(budget);
        let mut response = request.send().await.map_err(classify)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(Failure::Status(response.status().as_u16()));
        }
        let headers = std::mem::take(response.headers_mut());
        let too_long = || Failure::InvalidJson(format!("(an answer over {MAX_ANSWER} bytes)"));
        // A declared length within bounds is read whole, without a copy; anything else chunk by chunk.
        let body = match response.content_length() {
            Some(n) if n as usize > MAX_ANSWER => return Err(too_long()),
            Some(_) => response.bytes().await.map_err(classify)?,
            None => {
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(classify)? {
                    if body.len() + chunk.len() > MAX_ANSWER {
                        return Err(too_long());
                    }
                    body.extend_from_slice(&chunk);
                }
                body.into()
            }
        };
        Ok((headers, body))
    }
}

/// This clock in unix seconds: API security's timestamps.
fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// What remains of the invocation for one exchange, or `None` when nothing does.
pub fn time_left(deadline: Instant) -> Option<Duration> {
    deadline.checked_duration_since(Instant::now())?.checked_sub(DEADLINE_MARGIN).filter(|d| !d.is_zero())
}

fn classify(e: reqwest::Error) -> Failure {
    let e = e.without_url();
    if e.is_timeout() {
        return Failure::Timeout;
    }
    Failure::Network(chain(&e))
}

/// The error and its causes, one line. reqwest's own text carries no URL once `without_url` has run; the causes are
/// hyper's and the OS's, which never see the query.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(EXCERPT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

/// WeChat's errcode in an answer: absent or null means success.
pub fn errcode(answer: &Answer) -> i64 {
    match answer.get("errcode") {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(i64::MIN),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(i64::MIN),
        _ => 0,
    }
}

/// WeChat's errmsg in an answer, verbatim.
pub fn errmsg(answer: &Answer) -> String {
    match answer.get("errmsg") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}
