//! What the emulator's answers are made of: WeChat's error answer and its JSON body, and the HTTP responses that
//! carry every answer.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Map, Value};

use wechat_wire::codes;

/// A secured answer: the envelope's compact JSON and the `Wechatmp-*` headers.
#[derive(Debug)]
pub(crate) struct Sealed {
    pub(crate) body: String,
    pub(crate) headers: Vec<(&'static str, String)>,
}

/// A WeChat error answer: the code, and an optional hint appended to WeChat's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WxError {
    pub code: i64,
    pub hint: Option<String>,
}

impl WxError {
    pub fn new(code: i64) -> Self {
        WxError { code, hint: None }
    }
    pub fn hinted(code: i64, hint: impl Into<String>) -> Self {
        WxError { code, hint: Some(hint.into()) }
    }
}

pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, WxError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(WxError::new(codes::EMPTY_POST_DATA));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(WxError::new(codes::DATA_FORMAT_ERROR)),
    }
}

/// WeChat answers 43002 to a POST endpoint called with another method.
pub(crate) fn require_post(method: &Method) -> Result<(), WxError> {
    if method != Method::POST {
        return Err(WxError::new(codes::REQUIRE_POST));
    }
    Ok(())
}

pub(crate) fn error_body(e: &WxError) -> Value {
    let text = codes::errmsg(e.code);
    let errmsg = match &e.hint {
        Some(hint) => format!("{text} hint: [{hint}] rid: {}", rid()),
        None => format!("{text} rid: {}", rid()),
    };
    json!({ "errcode": e.code, "errmsg": errmsg })
}

pub(crate) fn rid() -> String {
    format!("{:08x}-{:08x}-{:08x}", rand::random::<u32>(), rand::random::<u32>(), rand::random::<u32>())
}

pub(crate) type WireReply = Response<Full<Bytes>>;

pub(crate) fn json_reply(value: Value, content_type: &str) -> WireReply {
    let mut reply = json_status(StatusCode::OK, value);
    reply.headers_mut().insert(http::header::CONTENT_TYPE, content_type.parse().expect("static content type"));
    reply
}

/// An answer to one of WeChat's paths: plain JSON, or sealed by API security.
pub(crate) enum Reply {
    Json(Value),
    Sealed(Sealed),
}

impl Reply {
    /// The HTTP response, its body labelled `content_type`.
    pub(crate) fn into_wire(self, content_type: &str) -> WireReply {
        match self {
            Reply::Json(value) => json_reply(value, content_type),
            Reply::Sealed(sealed) => {
                let mut reply = plain(StatusCode::OK, content_type, &sealed.body);
                for (name, value) in sealed.headers {
                    let name = http::HeaderName::from_bytes(name.as_bytes());
                    if let (Ok(name), Ok(value)) = (name, http::HeaderValue::from_str(&value)) {
                        reply.headers_mut().insert(name, value);
                    }
                }
                reply
            }
        }
    }
}

pub(crate) fn json_status(status: StatusCode, value: Value) -> WireReply {
    plain(status, "application/json", &value.to_string())
}

pub(crate) fn plain(status: StatusCode, content_type: &str, body: &str) -> WireReply {
    let mut reply = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *reply.status_mut() = status;
    reply.headers_mut().insert(http::header::CONTENT_TYPE, content_type.parse().expect("static content type"));
    reply
}

pub(crate) fn not_found() -> WireReply {
    plain(
        StatusCode::NOT_FOUND,
        "text/html",
        "<html><head><title>404 Not Found</title></head><body>404 Not Found</body></html>",
    )
}
