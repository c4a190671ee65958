//! The open platform's pushes to a platform's authorisation-event URL: sealing (encrypted and signed as WeChat does)
//! and delivery.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::invalid::Invalid;
use super::world::{Component, World};
use wechat_wire::crypt;

/// WeChat gives up on a push after about 5 s.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// A push as WeChat sends it to the authorisation-event URL: the query string to append to the URL and the XML body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformPush {
    /// `signature=…&timestamp=…&nonce=…&encrypt_type=aes&msg_signature=…`
    pub query: String,
    /// `<xml><AppId><![CDATA[…]]></AppId><Encrypt><![CDATA[…]]></Encrypt></xml>`
    pub body: String,
}

impl PlatformPush {
    /// The value of query parameter `name` (`timestamp`, `nonce`, `msg_signature`, …), percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// The push as an API Gateway HTTP API (payload 2.0) hands it to the function on a route without
    /// authorisation (`POST /wechat/authorization-events`): what a deployed function receives from WeChat.
    pub fn http_api_event(&self) -> serde_json::Value {
        let params: HashMap<String, String> = form_urlencoded::parse(self.query.as_bytes()).into_owned().collect();
        let path = "/wechat/authorization-events";
        serde_json::json!({
            "version": "2.0",
            "routeKey": format!("POST {path}"),
            "rawPath": path,
            "rawQueryString": self.query,
            "queryStringParameters": params,
            "headers": {"content-type": "text/xml", "user-agent": "Mozilla/4.0"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc123",
                "domainName": "abc123.execute-api.ap-east-1.amazonaws.com",
                "domainPrefix": "abc123",
                "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "101.226.103.10",
                         "userAgent": "Mozilla/4.0"},
                "requestId": "wechat-push",
                "routeKey": format!("POST {path}"),
                "stage": "$default",
                "time": "22/Nov/2026:00:00:00 +0000",
                "timeEpoch": 1_763_800_000_000_u64
            },
            "body": self.body,
            "isBase64Encoded": false
        })
    }
}

/// Why a scripted platform change could not be made (an unknown platform or mini program).
pub(crate) type Refusal = Invalid;

/// A push ready to hand out, and where to deliver it if the platform has a URL.
pub(crate) struct Outgoing {
    pub push: PlatformPush,
    pub push_url: Option<String>,
}

impl Outgoing {
    /// Delivers the push (if there is a URL) and gives it.
    pub(crate) fn send(self) -> PlatformPush {
        if let Some(url) = self.push_url {
            deliver(url, self.push.clone());
        }
        self.push
    }
}

pub(crate) fn component<'w>(world: &'w World, appid: &str) -> Result<&'w Component, Refusal> {
    world
        .component(appid)
        .ok_or_else(|| Invalid::Request(format!("{appid} is not a third-party platform of the emulator")))
}

/// Encrypts and signs `inner_xml` for `component_appid`, as WeChat pushes it at virtual time `now`.
pub(crate) fn seal(world: &World, component_appid: &str, inner_xml: &str, now: i64) -> Result<Outgoing, Refusal> {
    let c = component(world, component_appid)?;
    let crypt = c.crypt()?;
    let timestamp = now.to_string();
    let nonce = rand::random_range(100_000_000u32..=u32::MAX).to_string();
    let encrypt = crypt.encrypt(inner_xml);
    let msg_signature = crypt.msg_signature(&timestamp, &nonce, &encrypt);
    let signature = crypt::signature(&mut [c.token.as_str(), &timestamp, &nonce]);
    let push = PlatformPush {
        query: format!(
            "signature={signature}&timestamp={timestamp}&nonce={nonce}&encrypt_type=aes&msg_signature={msg_signature}"
        ),
        body: format!("<xml><AppId><![CDATA[{}]]></AppId><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>", c.appid),
    };
    Ok(Outgoing { push, push_url: c.push_url.clone() })
}

/// POSTs `push` to `url` on a thread of its own, as WeChat does: a 5 s timeout, the bare string `success` expected.
/// Failures are only logged: WeChat does not tell the platform either.
fn deliver(url: String, push: PlatformPush) {
    let spawned = std::thread::Builder::new().name("wechat-emulator-push".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => return eprintln!("wechat emulator: cannot push to {url}: {e}"),
        };
        runtime.block_on(async move {
            let separator = if url.contains('?') { '&' } else { '?' };
            let target = format!("{url}{separator}{}", push.query);
            let client = match reqwest::Client::builder().timeout(PUSH_TIMEOUT).build() {
                Ok(client) => client,
                Err(e) => return eprintln!("wechat emulator: cannot push to {url}: {e}"),
            };
            let sent = client
                .post(&target)
                .header(http::header::CONTENT_TYPE, "text/xml")
                .header(http::header::USER_AGENT, "Mozilla/4.0")
                .body(push.body)
                .send()
                .await;
            match sent {
                Ok(reply) => {
                    let status = reply.status();
                    let text = reply.text().await.unwrap_or_default();
                    if !status.is_success() || text.trim() != "success" {
                        eprintln!("wechat emulator: push to {url} answered {status} {text:?}, not `success`");
                    }
                }
                Err(e) => eprintln!("wechat emulator: push to {url} failed: {e}"),
            }
        })
    });
    if let Err(e) = spawned {
        eprintln!("wechat emulator: cannot start a push thread: {e}");
    }
}
