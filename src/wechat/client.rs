//! HTTP to WeChat: one pooled hyper client per container, every exchange bounded by the invocation's deadline, and
//! errors that never carry the URL (ours carry `access_token` and, on the classic endpoint, the secret).
//!
//! hyper's own client rather than reqwest (which the stores keep): per request reqwest parses the URL, runs its redirect
//! policy over it (even `Policy::none()`) and boxes its futures, about 10 µs of a warm invocation's CPU; here a request
//! is one `http::Uri` parse and a header map (BENCHMARKS.md, "The WeChat client").

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};

use super::security::ApiSecurity;
use crate::clock::unix_secs;
use crate::error::{chain, Failure};

/// Time kept back from the invocation's deadline to send the answer to Lambda.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(250);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Below WeChat's keep-alive, so the pool drops a connection before the far end does.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);
/// WeChat's answers are small; a bigger one is broken and not read further.
const MAX_ANSWER: usize = 1 << 20;
const AGENT: &str = concat!("wx-plugin-manager/", env!("CARGO_PKG_VERSION"));

/// A plugin call's answer as it came, for [`crate::present`] to read into the cloud call's shape: WeChat's JSON text,
/// or (API security) the fields its verified envelope opened to.
#[derive(Debug)]
pub enum PluginAnswer {
    /// The body of a plain answer, not yet read: it may not be JSON at all.
    Text(Bytes),
    /// A sealed answer, verified and decrypted; its keys as WeChat wrote them.
    Opened(Answer),
}

/// What a broken token answer is shown as, in place of its body.
pub const WITHHELD: &str = "(the token endpoint's answer, withheld: it is not a token answer)";

/// A WeChat answer: a JSON object, errcode included if WeChat sent one.
pub type Answer = Map<String, Value>;

type Http = hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One HTTP client for every exchange with WeChat: bounded by the deadline, never following redirects (hyper's client
/// follows none: a redirect would carry the secret or the token to wherever it points), its errors never carrying a
/// URL.
#[derive(Debug, Clone)]
pub struct WeChatClient {
    http: Http,
    base: String,
    /// API security, when on: plugin calls are sealed and their answers opened.
    security: Option<Arc<ApiSecurity>>,
}

/// Why the client could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The TLS stack or the HTTP client could not be set up.
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
    /// `WX_API_BASE` followed by a path does not make a URL.
    #[error("WX_API_BASE: {0}")]
    Base(String),
}

impl WeChatClient {
    /// A client of WeChat at `base` (`https://api.weixin.qq.com`, or the emulator's or a proxy's origin).
    pub fn new(base: &str) -> Result<WeChatClient, ClientError> {
        let base = base.trim_end_matches('/').to_owned();
        // A bare `/`, not one of WeChat's paths: the operations own those, and a path of letters and slashes after
        // the base parses wherever `/` does.
        let probe: Uri =
            format!("{base}/").parse().map_err(|e: http::uri::InvalidUri| ClientError::Base(e.to_string()))?;
        if !matches!(probe.scheme_str(), Some("http" | "https")) || probe.authority().is_none() {
            return Err(ClientError::Base("not an http or https origin".into()));
        }
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        tcp.set_nodelay(true);
        tcp.set_keepalive(Some(TCP_KEEPALIVE));
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| ClientError::Build(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(tls);
        Ok(WeChatClient { http, base, security: None })
    }

    /// The same client with API security on for the plugin endpoints (token and component endpoints never use it).
    pub fn with_security(mut self, security: ApiSecurity) -> WeChatClient {
        self.security = Some(Arc::new(security));
        self
    }

    /// `POST {base}{path}?access_token=…` with a JSON body; the answer as it came (sealed and opened when API
    /// security is on).
    pub async fn call(
        &self,
        path: &str,
        token: &SecretString,
        body: &Value,
        deadline: Instant,
    ) -> Result<PluginAnswer, Failure> {
        let uri = self.uri(path, &[("access_token", token.expose_secret())])?;
        match &self.security {
            None => Ok(PluginAnswer::Text(self.fetch(post_json(uri, body)?, deadline).await?.1)),
            Some(security) => self.sealed_call(security, path, uri, body, deadline).await.map(PluginAnswer::Opened),
        }
    }

    /// A plugin call through API security: the body sealed and signed, the answer verified and opened.
    async fn sealed_call(
        &self,
        security: &ApiSecurity,
        path: &str,
        uri: Uri,
        body: &Value,
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let empty = Map::new();
        let fields = body.as_object().unwrap_or(&empty);
        let sealed = security.seal(path, fields, unix_secs()).map_err(Failure::Unverified)?;
        let mut request = post(uri, sealed.body.into())?;
        for (name, value) in sealed.headers {
            let value = HeaderValue::try_from(value).map_err(|e| Failure::Network(e.to_string()))?;
            request.headers_mut().insert(name, value);
        }
        let (headers, answer) = self.fetch(request, deadline).await?;
        security.open(path, &headers, &answer, unix_secs()).map_err(Failure::Unverified)
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
        let query: Vec<_> =
            component_token.map(|t| ("component_access_token", t.expose_secret())).into_iter().collect();
        let request = post_json(self.uri(path, &query)?, body)?;
        self.exchange(request, deadline).await
    }

    /// `POST /cgi-bin/stable_token`, never with `force_refresh`.
    pub async fn stable_token(&self, appid: &str, secret: &SecretString, deadline: Instant) -> Result<Answer, Failure> {
        let body = json!({
            "grant_type": "client_credential",
            "appid": appid,
            "secret": secret.expose_secret(),
            "force_refresh": false,
        });
        let request = post_json(self.uri("/cgi-bin/stable_token", &[])?, &body)?;
        self.exchange(request, deadline).await
    }

    /// `GET /cgi-bin/token`.
    pub async fn classic_token(
        &self,
        appid: &str,
        secret: &SecretString,
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let query = [("grant_type", "client_credential"), ("appid", appid), ("secret", secret.expose_secret())];
        let request = with_agent(Request::get(self.uri("/cgi-bin/token", &query)?)).body(Full::default());
        let request = request.map_err(|e| Failure::Network(e.to_string()))?;
        self.exchange(request, deadline).await
    }

    /// `{base}{path}?{query}`, the query form-encoded. A failure names no part of it: the query holds a token or the
    /// secret.
    fn uri(&self, path: &str, query: &[(&str, &str)]) -> Result<Uri, Failure> {
        let mut text = format!("{}{path}", self.base);
        if !query.is_empty() {
            text.push('?');
            text.push_str(&form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish());
        }
        text.parse().map_err(|e: http::uri::InvalidUri| Failure::Network(format!("the request's URL: {e}")))
    }

    /// A token or component endpoint's exchange. Its answer may hold a token even when broken (a proxy's wrapper, a
    /// stray BOM before the JSON): never quoted.
    async fn exchange(&self, request: Request<Full<Bytes>>, deadline: Instant) -> Result<Answer, Failure> {
        let (_, body) = self.fetch(request, deadline).await?;
        // WeChat's JSON sometimes comes labelled text/plain: the label is not trusted either way.
        match serde_json::from_slice(&body) {
            Ok(Value::Object(answer)) => Ok(answer),
            _ => Err(Failure::InvalidJson(WITHHELD.to_owned())),
        }
    }

    /// Sends `request` and reads its answer within the deadline; an answer other than HTTP 200 is a failure, a 200's
    /// headers and body (at most [`MAX_ANSWER`] bytes) are read.
    async fn fetch(&self, request: Request<Full<Bytes>>, deadline: Instant) -> Result<(HeaderMap, Bytes), Failure> {
        let budget = time_left(deadline).ok_or(Failure::Timeout)?;
        tokio::time::timeout(budget, self.send(request)).await.unwrap_or(Err(Failure::Timeout))
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<(HeaderMap, Bytes), Failure> {
        let response = self.http.request(request).await.map_err(|e| classify(&e))?;
        if response.status() != StatusCode::OK {
            return Err(Failure::Status(response.status().as_u16()));
        }
        let (parts, body) = response.into_parts();
        let too_long = || Failure::InvalidJson(format!("(an answer over {MAX_ANSWER} bytes)"));
        if body.size_hint().lower() > MAX_ANSWER as u64 {
            return Err(too_long());
        }
        match Limited::new(body, MAX_ANSWER).collect().await {
            Ok(body) => Ok((parts.headers, body.to_bytes())),
            Err(e) if e.is::<LengthLimitError>() => Err(too_long()),
            Err(e) => Err(classify(&*e)),
        }
    }
}

fn with_agent(request: http::request::Builder) -> http::request::Builder {
    request.header(USER_AGENT, HeaderValue::from_static(AGENT))
}

fn post(uri: Uri, body: Bytes) -> Result<Request<Full<Bytes>>, Failure> {
    let request = with_agent(Request::builder().method(Method::POST).uri(uri));
    request
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .body(Full::new(body))
        .map_err(|e| Failure::Network(e.to_string()))
}

fn post_json(uri: Uri, body: &Value) -> Result<Request<Full<Bytes>>, Failure> {
    let body = serde_json::to_vec(body).map_err(|e| Failure::Network(e.to_string()))?;
    post(uri, body.into())
}

/// What remains of the invocation for one exchange, or `None` when nothing does.
pub fn time_left(deadline: Instant) -> Option<Duration> {
    deadline.checked_duration_since(Instant::now())?.checked_sub(DEADLINE_MARGIN).filter(|d| !d.is_zero())
}

/// A connection that could not be made in time is a timeout, as the deadline's own; every other failure is the
/// network's, told by its causes (hyper's and the OS's, which never see the URL).
fn classify(e: &(dyn std::error::Error + 'static)) -> Failure {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) {
            return Failure::Timeout;
        }
        cause = c.source();
    }
    Failure::Network(chain(e))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_is_an_http_origin_that_a_path_can_follow() {
        let refusal = |base: &str| WeChatClient::new(base).err().map(|e| e.to_string());
        for base in ["https://api.weixin.qq.com", "http://127.0.0.1:9/", "https://proxy.example/wechat//"] {
            assert_eq!(refusal(base), None, "{base}");
        }
        let cases = [
            ("", "WX_API_BASE: not an http or https origin"),
            ("/wxa", "WX_API_BASE: not an http or https origin"),
            ("ftp://host", "WX_API_BASE: not an http or https origin"),
            ("host:80", "WX_API_BASE: invalid format"),
            ("not a url", "WX_API_BASE: invalid uri character"),
            ("https://", "WX_API_BASE: invalid format"),
            ("https://ho st", "WX_API_BASE: invalid uri character"),
        ];
        for (base, message) in cases {
            assert_eq!(refusal(base).as_deref(), Some(message), "{base:?}");
        }
    }
}
