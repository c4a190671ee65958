//! HTTP gateways in front of the function: API Gateway REST APIs (payload 1.0), HTTP APIs (payload 2.0), Lambda
//! function URLs and Application Load Balancers. The raw event says which one sent it (or that it is a direct
//! invocation); the request is admitted only when authenticated, then computed exactly as a direct invocation, and
//! answered in the gateway's own response shape. A WeChat push (a POST signed in its query) is read, not judged:
//! its query values and body are handed on as a `PushRequest`, and the platform checks the signature.

use aws_lambda_events::alb::{AlbTargetGroupRequest, AlbTargetGroupResponse};
use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use base64::Engine;
use http::header::{HeaderMap, HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::error::{Error, Failure};
use crate::present;
use wechat_wire::codes::{self, Class};

/// The largest body accepted, decoded.
pub(crate) const MAX_BODY: usize = 64 * 1024;
const JSON_UTF8: &str = "application/json; charset=utf-8";

/// Which HTTP front end sent a request: it decides how the event is read and the answer shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gateway {
    /// An API Gateway REST API, or an HTTP API set to payload format 1.0.
    RestApi,
    /// An API Gateway HTTP API with payload format 2.0.
    HttpApi,
    /// A Lambda function URL.
    FunctionUrl,
    /// An Application Load Balancer's target group.
    Alb,
}

impl Gateway {
    /// Its snake_case name, as the record's `gateway` field gives it.
    pub fn name(self) -> &'static str {
        match self {
            Gateway::RestApi => "rest_api",
            Gateway::HttpApi => "http_api",
            Gateway::FunctionUrl => "function_url",
            Gateway::Alb => "alb",
        }
    }
}

/// What an event is.
pub enum Inbound {
    /// A direct invocation: the event is the call.
    Direct(Value),
    /// A gateway's request; `Err` when it has the gateway's shape but cannot be read as its request.
    Http(Gateway, Result<HttpRequest, Reply>),
}

/// A gateway request, reduced to what admission needs.
#[derive(Debug)]
pub struct HttpRequest {
    method: String,
    /// The `Authorization` header: may hold the gateway key, so kept out of Debug output.
    authorization: Option<SecretString>,
    body: Option<String>,
    base64: bool,
    /// How the gateway authorised the request, if it did.
    authorised_by: Option<&'static str>,
    /// An ALB target group with multi-value headers on wants them in the answer too.
    multi_value_headers: bool,
    /// `msg_signature`, `timestamp` and `nonce` from the query: what a WeChat push is signed with.
    signed: Option<[String; 3]>,
}

/// A WeChat push as the gateway read it: the query values its signature covers, as sent, and its body. Verifying
/// them is the platform's.
#[derive(Debug)]
pub(crate) struct PushRequest<'a> {
    /// The query's `msg_signature`.
    pub msg_signature: &'a str,
    /// The query's `timestamp`: text, as it is signed.
    pub timestamp: &'a str,
    /// The query's `nonce`.
    pub nonce: &'a str,
    /// The body, decoded from the gateway's encoding: WeChat's XML envelope.
    pub body: String,
}

/// An HTTP answer, before it takes the gateway's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The HTTP status: 200 for a result, else as `status_of` maps the error.
    pub status: u16,
    /// The result or `{errCode, errMsg}` as JSON; a bare string (`success`) is sent as text.
    pub body: Value,
    headers: Vec<(http::HeaderName, &'static str)>,
}

impl Reply {
    /// A call's result, with 200.
    pub fn ok(result: Value) -> Reply {
        Reply { status: 200, body: result, headers: Vec::new() }
    }

    /// A failed call: wx-server-sdk's `{errCode, errMsg}`, with the status its kind and errcode map to.
    pub fn from_error(error: &Error) -> Reply {
        Reply { status: status_of(error), body: error.to_json(), headers: Vec::new() }
    }

    /// The bare `success` WeChat wants after a push: no JSON, no XML.
    pub fn success() -> Reply {
        Reply { status: 200, body: Value::String("success".to_owned()), headers: Vec::new() }
            .with_header(CONTENT_TYPE, "text/plain; charset=utf-8")
    }

    /// A failure answered at the HTTP edge, with its own `errCode`.
    pub fn failed(status: u16, err_code: i64, detail: &str) -> Reply {
        let body = present::thrown(err_code, present::fail_message(present::NO_METHOD, format_args!("{detail}")));
        Reply { status, body, headers: Vec::new() }
    }

    /// A refusal at the HTTP edge, before any call: errCode is minus the status.
    fn refuse(status: u16, detail: &str) -> Reply {
        Reply::failed(status, -i64::from(status), detail)
    }

    fn with_header(mut self, name: http::HeaderName, value: &'static str) -> Reply {
        self.headers.push((name, value));
        self
    }
}

/// The one status table: what each failure is over HTTP.
pub(crate) fn status_of(error: &Error) -> u16 {
    match error {
        Error::InvalidEvent { .. } => 400,
        Error::WxApi { errcode, .. } => match codes::class(*errcode) {
            Class::Ok => 200,
            Class::BadRequest => 400,
            Class::Refused => 403,
            Class::NotFound => 404,
            Class::WrongState => 409,
            Class::Quota => 429,
            Class::StaleToken | Class::Config => 500,
            Class::Busy | Class::Other => 502,
        },
        Error::Token { .. } | Error::Store { .. } | Error::Config(_) => 500,
        Error::Rollout { .. } => 503,
        Error::Upstream { failure: Failure::Timeout, .. } => 504,
        Error::Upstream { .. } => 502,
    }
}

/// Tells a gateway's request from a direct invocation by the fields only a gateway sets.
pub fn recognise(event: Value) -> Inbound {
    let context = event.get("requestContext");
    let gateway = if context.and_then(|c| c.get("elb")).is_some() {
        Gateway::Alb
    } else if event.get("version").and_then(Value::as_str) == Some("2.0") && context.is_some() {
        let domain = context.and_then(|c| c.get("domainName")).and_then(Value::as_str).unwrap_or_default();
        if domain.contains(".lambda-url.") {
            Gateway::FunctionUrl
        } else {
            Gateway::HttpApi
        }
    } else if event.get("httpMethod").is_some() && context.is_some() {
        Gateway::RestApi
    } else {
        return Inbound::Direct(event);
    };
    let authorised_by = authorisation(gateway, &event);
    let parsed = read(gateway, event).map(|mut request| {
        request.authorised_by = authorised_by;
        request
    });
    Inbound::Http(
        gateway,
        parsed.map_err(|e| Reply::refuse(400, &format!("not a readable {} request: {e}", gateway.name()))),
    )
}

/// How the gateway vouched for the caller, read from `requestContext` (which only the gateway can set). Only real
/// evidence counts: gateways send the same fields as nulls (`"authorizer":{"claims":null}`) for anonymous requests.
fn authorisation(gateway: Gateway, event: &Value) -> Option<&'static str> {
    let context = &event["requestContext"];
    let text = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    let filled = |v: &Value| v.as_object().is_some_and(|o| !o.is_empty());
    // SigV4: API Gateway and function URLs name the signer's key and identity.
    let iam = |v: &Value| text(&v["accessKey"]) && (text(&v["userArn"]) || text(&v["callerId"]) || text(&v["caller"]));
    let authorizer = &context["authorizer"];
    match gateway {
        // REST APIs, and HTTP APIs with payload 1.0.
        Gateway::RestApi => {
            if iam(&context["identity"]) {
                Some("iam")
            } else if filled(&authorizer["claims"]) {
                Some("jwt")
            } else if text(&authorizer["principalId"]) || filled(&authorizer["lambda"]) {
                Some("authorizer")
            } else {
                None
            }
        }
        Gateway::HttpApi => {
            if filled(&authorizer["jwt"]["claims"]) {
                Some("jwt")
            } else if iam(&authorizer["iam"]) {
                Some("iam")
            } else if filled(&authorizer["lambda"]) {
                // A Lambda authorizer must return a context for its requests to be told from anonymous ones.
                Some("authorizer")
            } else {
                None
            }
        }
        Gateway::FunctionUrl => iam(&authorizer["iam"]).then_some("iam"),
        // An ALB vouches for nobody in the event: only the key can.
        Gateway::Alb => None,
    }
}

fn read(gateway: Gateway, event: Value) -> Result<HttpRequest, serde_json::Error> {
    let signed = |query: &dyn Fn(&str) -> Option<String>| -> Option<[String; 3]> {
        Some([query("msg_signature")?, query("timestamp")?, query("nonce")?])
    };
    let request = |method: &str, headers: &HeaderMap, body: Option<String>, base64: bool| HttpRequest {
        signed: None,
        method: method.to_owned(),
        authorization: headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| SecretString::from(v.to_owned())),
        body,
        base64,
        authorised_by: None,
        multi_value_headers: false,
    };
    Ok(match gateway {
        Gateway::RestApi => {
            let r: ApiGatewayProxyRequest = serde_json::from_value(event)?;
            let signed = signed(&|name| r.query_string_parameters.first(name).map(str::to_owned));
            HttpRequest { signed, ..request(r.http_method.as_str(), &r.headers, r.body, r.is_base64_encoded) }
        }
        Gateway::HttpApi => {
            let r: ApiGatewayV2httpRequest = serde_json::from_value(event)?;
            let signed = signed(&|name| r.query_string_parameters.first(name).map(str::to_owned));
            HttpRequest {
                signed,
                ..request(r.request_context.http.method.as_str(), &r.headers, r.body, r.is_base64_encoded)
            }
        }
        Gateway::FunctionUrl => {
            let r: LambdaFunctionUrlRequest = serde_json::from_value(event)?;
            let signed = signed(&|name| r.query_string_parameters.get(name).cloned());
            let method = r.request_context.http.method.as_deref().unwrap_or_default();
            HttpRequest { signed, ..request(method, &r.headers, r.body, r.is_base64_encoded) }
        }
        Gateway::Alb => {
            let r: AlbTargetGroupRequest = serde_json::from_value(event)?;
            let multi = !r.multi_value_headers.is_empty();
            let headers = if multi { &r.multi_value_headers } else { &r.headers };
            let query = if multi { &r.multi_value_query_string_parameters } else { &r.query_string_parameters };
            HttpRequest {
                multi_value_headers: multi,
                signed: signed(&|name| query.first(name).map(str::to_owned)),
                ..request(r.http_method.as_str(), headers, r.body, r.is_base64_encoded)
            }
        }
    })
}

impl HttpRequest {
    /// The body, decoded, if it fits.
    fn body_bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>, Reply> {
        let raw = self.body.as_deref().unwrap_or_default();
        // Base64 takes 4 characters for 3 bytes: a longer text cannot decode to a body that fits.
        if raw.len() > MAX_BODY / 3 * 4 + 4 || (!self.base64 && raw.len() > MAX_BODY) {
            return Err(too_large());
        }
        let bytes: std::borrow::Cow<'_, [u8]> = if self.base64 {
            base64::engine::general_purpose::STANDARD
                .decode(raw)
                .map_err(|_| Reply::refuse(400, "the body is marked base64 but does not decode"))?
                .into()
        } else {
            raw.as_bytes().into()
        };
        if bytes.len() > MAX_BODY {
            return Err(too_large());
        }
        Ok(bytes)
    }

    /// The event inside an authenticated, well-formed request; or the refusal. Nothing here calls WeChat.
    pub fn admit(&self, key: Option<&SecretString>) -> Result<Value, Reply> {
        let presented = self.authorization.as_ref().map(ExposeSecret::expose_secret);
        if self.authorised_by.is_none() && !bearer_matches(presented, key) {
            let detail = "unauthorized: authorise the request at the gateway (IAM, JWT or a Lambda authorizer) \
                          or send Authorization: Bearer <GATEWAY_API_KEY>";
            return Err(Reply::refuse(401, detail).with_header(WWW_AUTHENTICATE, "Bearer"));
        }
        if self.method != "POST" {
            let detail = format!("method {} not allowed: POST the call as a JSON object", self.method);
            return Err(Reply::refuse(405, &detail).with_header(ALLOW, "POST"));
        }
        let bytes = self.body_bytes()?;
        match serde_json::from_slice(&bytes) {
            Ok(event @ Value::Object(_)) => Ok(event),
            _ => Err(Reply::refuse(400, "the body must be a JSON object: the call's parameters")),
        }
    }

    /// A WeChat push (a POST signed in its query), with its body: authenticated by its signature, not the gateway.
    pub(crate) fn push(&self) -> Option<Result<PushRequest<'_>, Reply>> {
        let [msg_signature, timestamp, nonce] = self.signed.as_ref()?;
        if self.method != "POST" {
            return None;
        }
        Some(self.body_bytes().and_then(|bytes| {
            String::from_utf8(bytes.into_owned())
                .map(|body| PushRequest { msg_signature, timestamp, nonce, body })
                .map_err(|_| Reply::refuse(400, "the push is not UTF-8 text"))
        }))
    }

    /// What admitted it: the gateway's own authorisation (`iam`, `jwt` or `authorizer`), else `key`: the bearer key.
    pub fn authorised_by(&self) -> &'static str {
        self.authorised_by.unwrap_or("key")
    }
}

fn too_large() -> Reply {
    Reply::refuse(413, &format!("the body is over {} KiB", MAX_BODY / 1024))
}

/// `Authorization: Bearer <key>` against the configured key, in time independent of where they differ.
fn bearer_matches(header: Option<&str>, key: Option<&SecretString>) -> bool {
    let (Some(header), Some(key)) = (header, key) else { return false };
    let Some((scheme, presented)) = header.trim().split_once(' ') else { return false };
    scheme.eq_ignore_ascii_case("bearer")
        && bool::from(presented.trim().as_bytes().ct_eq(key.expose_secret().as_bytes()))
}

/// The reply in `gateway`'s response shape, as the JSON the runtime sends back.
pub fn respond(gateway: Gateway, reply: Reply, request: Option<&HttpRequest>) -> Value {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    for (name, value) in &reply.headers {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
    // A string body is sent as it is (a push's `success`); anything else as JSON.
    let body = Some(Body::Text(match reply.body {
        Value::String(text) => text,
        other => other.to_string(),
    }));
    let status = i64::from(reply.status);
    let shaped = match gateway {
        Gateway::RestApi => {
            let mut r = ApiGatewayProxyResponse::default();
            (r.status_code, r.headers, r.body) = (status, headers, body);
            serde_json::to_value(r)
        }
        Gateway::HttpApi | Gateway::FunctionUrl => {
            let mut r = ApiGatewayV2httpResponse::default();
            (r.status_code, r.headers, r.body) = (status, headers, body);
            serde_json::to_value(r)
        }
        Gateway::Alb => {
            let mut r = AlbTargetGroupResponse::default();
            let reason = http::StatusCode::from_u16(reply.status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
            (r.status_code, r.status_description, r.body) = (status, Some(format!("{} {reason}", reply.status)), body);
            if request.is_some_and(|q| q.multi_value_headers) {
                r.multi_value_headers = headers;
            } else {
                r.headers = headers;
            }
            serde_json::to_value(r)
        }
    };
    shaped.unwrap_or_else(|_| json!({ "statusCode": 500 }))
}

#[cfg(test)]
mod tests;
