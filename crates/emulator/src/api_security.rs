//! WeChat's server API security (服务端API安全) as WeChat applies it to `/wxa/plugin` and `/wxa/devplugin`: the keys
//! an account or a platform set in its console, the checks a secured request goes through (each failure a plain
//! 40231–40240 answer), and the encrypted, signed answer. The wire itself (envelope, additional data, signed string,
//! RSASSA-PSS) is `wechat_wire::envelope`, shared with the client.
//!
//! What it decides where WeChat's documents are silent is listed in the emulator's documentation (`mod.rs`).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::invalid::Invalid;
use super::security_settings::{AppApiSecurity, Enforcement, PlatformCertKeys};
use super::wire::{Sealed, WxError};
use super::world::World;
use wechat_wire::codes;
use wechat_wire::envelope::{additional_data, random, random_nonce_field, signed_bytes, Envelope, Signer, SymKey};

/// How far a request's `Wechatmp-TimeStamp` may be from the emulator's clock, either way.
pub const TIMESTAMP_WINDOW_SECS: i64 = 300;
/// How old the timestamp of a [`Fault::StaleTimestamp`](super::Fault::StaleTimestamp) answer is.
pub const STALE_BY_SECS: i64 = 360;
/// The appid a [`Fault::ForeignAppid`](super::Fault::ForeignAppid) answer is made out to.
pub const FOREIGN_APPID: &str = "wxforeignapp0001";
/// What the function needs to speak API security as `appid` (a mini program or a platform): its environment
/// variables, `WX_API_PLATFORM_CERTS` holding the current certificate only.
pub(crate) fn env(world: &World, appid: &str) -> Result<Vec<(String, String)>, Invalid> {
    let keys =
        world.api_security_of(appid).ok_or_else(|| Invalid::World(format!("{appid} has no api_security keys")))?;
    let platform = &world.api_security;
    let cert = platform
        .platform_cert
        .as_ref()
        .ok_or(Invalid::World("the world has no api_security.platform_cert".to_owned()))?;
    let pairs = [
        ("WX_API_SECURITY", "on".to_owned()),
        ("WX_API_SYM_KEY", keys.sym_key.clone()),
        ("WX_API_SYM_SN", keys.sym_sn.clone()),
        ("WX_API_PRIVATE_KEY", keys.app_private_key.clone()),
        ("WX_API_KEY_SN", keys.app_key_sn.clone()),
        ("WX_API_PLATFORM_CERTS", json!({ &cert.sn: &cert.cert }).to_string()),
        ("WX_API_SIGNING_ORIGIN", platform.signing_origin.clone()),
    ];
    Ok(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// The API security headers of a request, as sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct SecurityHeaders {
    appid: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
}

impl SecurityHeaders {
    pub(crate) fn from_request(headers: &http::HeaderMap) -> SecurityHeaders {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        SecurityHeaders {
            appid: get("wechatmp-appid"),
            timestamp: get("wechatmp-timestamp"),
            signature: get("wechatmp-signature"),
        }
    }

    fn secured(&self) -> bool {
        self.appid.is_some() || self.timestamp.is_some() || self.signature.is_some()
    }
}

/// Who may speak for an access token in the protocol.
pub(crate) enum Owner {
    /// A mini program's or plugin's own token.
    Account(String),
    /// An authorizer token minted through this platform.
    Component(String),
    /// An authorizer token minted outside any platform: any platform of the world.
    AnyComponent,
}

/// A scripted spoiling of a secured answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spoil {
    TamperedEnvelope,
    UnknownCertificate,
    ForeignAppid,
    StaleTimestamp,
}

/// A secured request that passed every check: whom to answer, how, and the body to process.
pub(crate) struct Session {
    appid: String,
    urlpath: String,
    keys: AppApiSecurity,
    /// The decrypted request without `_n`, `_appid` and `_timestamp`, processed as a plain body would be.
    pub(crate) body: Vec<u8>,
}

/// Checks a request to a plugin endpoint: `None` for a plain call the owner's enforcement allows, the session of a
/// secured call that passed, or the plain error WeChat answers.
pub(crate) fn open(
    world: &World,
    owner: &Owner,
    headers: &SecurityHeaders,
    path: &str,
    body: &[u8],
    now: i64,
) -> Result<Option<Session>, WxError> {
    if !headers.secured() {
        return plain_call(world, owner);
    }
    let appid = headers.appid.as_deref().ok_or(WxError::new(codes::API_SECURITY_MISSING_APPID))?;
    let timestamp = headers.timestamp.as_deref().and_then(|t| t.trim().parse::<u64>().ok());
    let timestamp = timestamp.ok_or(WxError::new(codes::API_SECURITY_MISSING_TIMESTAMP))?;
    let signature = headers.signature.as_deref().ok_or(WxError::new(codes::API_SECURITY_MISSING_SIGNATURE))?;

    let is_component = world.component(appid).is_some();
    if !is_component && world.account(appid).is_none() {
        return Err(WxError::new(codes::API_SECURITY_INVALID_APPID));
    }
    let owns = match owner {
        Owner::Account(owner) | Owner::Component(owner) => owner == appid,
        Owner::AnyComponent => is_component,
    };
    if !owns {
        return Err(WxError::new(codes::API_SECURITY_APPID_MISMATCH));
    }
    let keys = world.api_security_of(appid).filter(|k| k.enforcement != Enforcement::Off);
    let keys = keys.ok_or(WxError::new(codes::API_SECURITY_NO_SYM_KEY))?;
    let (Ok(sym_key), Ok(app_key)) = (SymKey::from_base64(&keys.sym_key), Signer::from_pem(&keys.app_private_key))
    else {
        return Err(WxError::new(codes::API_SECURITY_NO_SYM_KEY));
    };
    if !i64::try_from(timestamp).is_ok_and(|t| (now - t).abs() <= TIMESTAMP_WINDOW_SECS) {
        return Err(WxError::new(codes::API_SECURITY_EXPIRED_TIMESTAMP));
    }
    let urlpath = format!("{}{path}", world.api_security.signing_origin);
    if !app_key.verifies(&signed_bytes(&urlpath, appid, timestamp, body), signature) {
        return Err(WxError::new(codes::API_SECURITY_INVALID_SIGNATURE));
    }
    let aad = additional_data(&urlpath, appid, timestamp, &keys.sym_sn);
    let fields = decrypt(&sym_key, body, &aad, appid, timestamp)?;
    Ok(Some(Session {
        appid: appid.to_owned(),
        urlpath,
        keys: keys.clone(),
        body: Value::Object(fields).to_string().into_bytes(),
    }))
}

/// A plain call: allowed unless its owner requires the layer (then WeChat's plain 40233).
fn plain_call(world: &World, owner: &Owner) -> Result<Option<Session>, WxError> {
    let owner_keys = match owner {
        Owner::Account(appid) | Owner::Component(appid) => world.api_security_of(appid),
        Owner::AnyComponent => None,
    };
    match owner_keys {
        Some(keys) if keys.enforcement == Enforcement::Required => Err(WxError::new(codes::API_SECURITY_MISSING_APPID)),
        _ => Ok(None),
    }
}

/// The request's fields, decrypted and checked (`_appid`, `_timestamp`), without the layer's three: or 40235.
fn decrypt(
    sym_key: &SymKey,
    body: &[u8],
    aad: &str,
    appid: &str,
    timestamp: u64,
) -> Result<serde_json::Map<String, Value>, WxError> {
    let invalid = || WxError::new(codes::API_SECURITY_INVALID_ENCRYPT);
    let envelope: Envelope = serde_json::from_slice(body).map_err(|_| invalid())?;
    let plaintext = sym_key.open(&envelope, aad.as_bytes()).map_err(|_| invalid())?;
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(&plaintext) else { return Err(invalid()) };
    let stamped = fields.get("_appid").and_then(Value::as_str) == Some(appid)
        && fields.get("_timestamp").and_then(Value::as_u64) == Some(timestamp);
    if !stamped {
        return Err(invalid());
    }
    for field in ["_n", "_appid", "_timestamp"] {
        fields.remove(field);
    }
    Ok(fields)
}

impl Session {
    /// `answer` (a JSON object) with `_n`, `_appid` and `_timestamp`, encrypted and signed as WeChat answers, or
    /// spoiled as scripted.
    pub(crate) fn seal(&self, world: &World, answer: Value, now: i64, spoil: Option<Spoil>) -> Result<Sealed, WxError> {
        let failed = |why: String| WxError::hinted(codes::SYSTEM_BUSY, format!("emulator: {why}"));
        let platform = &world.api_security;
        let current = platform.platform_cert.as_ref().ok_or_else(|| failed("no platform certificate".into()))?;
        let appid = if spoil == Some(Spoil::ForeignAppid) { FOREIGN_APPID } else { self.appid.as_str() };
        let at = if spoil == Some(Spoil::StaleTimestamp) { now - STALE_BY_SECS } else { now };
        let at = u64::try_from(at).map_err(|_| failed(format!("the clock is before 1970: {at}")))?;

        let mut envelope = self.envelope(answer, appid, at).map_err(failed)?;
        let body = serde_json::to_string(&envelope).map_err(|e| failed(e.to_string()))?;
        let message = signed_bytes(&self.urlpath, appid, at, body.as_bytes());
        let sign = |cert: &PlatformCertKeys| {
            cert.signer().and_then(|s| s.sign(&message).map_err(|e| Invalid::World(e.to_string())))
        };

        let mut headers = vec![("Wechatmp-Appid", appid.to_owned()), ("Wechatmp-TimeStamp", at.to_string())];
        if spoil == Some(Spoil::UnknownCertificate) {
            // A number no client was given, and a key that is not the current certificate's.
            let signer = platform.deprecated_cert.as_ref().unwrap_or(current);
            let unknown: String =
                random::<16>().map_err(|e| failed(e.to_string()))?.iter().map(|b| format!("{b:02x}")).collect();
            headers.push(("Wechatmp-Serial", unknown));
            headers.push(("Wechatmp-Signature", sign(signer).map_err(|e| failed(e.to_string()))?));
            return Ok(Sealed { body, headers });
        }
        headers.push(("Wechatmp-Serial", current.sn.clone()));
        headers.push(("Wechatmp-Signature", sign(current).map_err(|e| failed(e.to_string()))?));
        if let Some(deprecated) = platform.deprecated_cert.as_ref().filter(|_| self.keys.rotation) {
            headers.push(("Wechatmp-Serial-Deprecated", deprecated.sn.clone()));
            headers.push(("Wechatmp-Signature-Deprecated", sign(deprecated).map_err(|e| failed(e.to_string()))?));
        }
        if spoil == Some(Spoil::TamperedEnvelope) {
            // Signed, then altered on the way: one bit of the ciphertext flipped.
            let mut data = BASE64.decode(&envelope.data).map_err(|e| failed(e.to_string()))?;
            data[0] ^= 0x01;
            envelope.data = BASE64.encode(&data);
            let tampered = serde_json::to_string(&envelope).map_err(|e| failed(e.to_string()))?;
            return Ok(Sealed { body: tampered, headers });
        }
        Ok(Sealed { body, headers })
    }

    /// `answer`'s fields after the layer's own (`_n`, `_appid`, `_timestamp`), encrypted for `appid` at `at`.
    fn envelope(&self, answer: Value, appid: &str, at: u64) -> Result<Envelope, String> {
        let mut fields = Map::new();
        fields.insert("_n".into(), json!(random_nonce_field().map_err(|e| e.to_string())?));
        fields.insert("_appid".into(), json!(appid));
        fields.insert("_timestamp".into(), json!(at));
        if let Value::Object(mut answer) = answer {
            fields.append(&mut answer);
        }
        let key = SymKey::from_base64(&self.keys.sym_key).map_err(|e| e.to_string())?;
        let iv = random::<12>().map_err(|e| e.to_string())?;
        let aad = additional_data(&self.urlpath, appid, at, &self.keys.sym_sn);
        Ok(key.seal(iv, aad.as_bytes(), Value::Object(fields).to_string().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{DEMO_APPID, DEMO_COMPONENT_APPID};
    use crate::security_settings::DEFAULT_SIGNING_ORIGIN;

    #[test]
    fn the_builtin_world_gives_the_demo_app_and_platform_keys_switched_off() {
        let world = World::builtin();
        world.validate().unwrap();
        for appid in [DEMO_APPID, DEMO_COMPONENT_APPID] {
            assert_eq!(world.api_security_of(appid).unwrap().enforcement, Enforcement::Off, "{appid}");
            let env = env(&world, appid).unwrap();
            assert_eq!(env.len(), 7);
            assert_eq!(env[0], ("WX_API_SECURITY".to_owned(), "on".to_owned()));
        }
        assert_eq!(world.api_security.signing_origin, DEFAULT_SIGNING_ORIGIN);
    }

    #[test]
    fn unusable_settings_are_refused_with_what_is_wrong() {
        type Breakage = (fn(&mut World), &'static str);
        let broken: [Breakage; 7] = [
            (|w| w.accounts[0].api_security.as_mut().unwrap().sym_key = "c2hvcnQ=".into(), "sym_key"),
            (|w| w.accounts[0].api_security.as_mut().unwrap().sym_sn = "xyz".into(), "sym_sn"),
            (|w| w.accounts[0].api_security.as_mut().unwrap().app_private_key = "nope".into(), "app_private_key"),
            (|w| w.api_security.signing_origin = "https://api.weixin.qq.com/".into(), "signing_origin"),
            (|w| w.api_security.platform_cert = None, "platform_cert is needed"),
            (|w| w.api_security.deprecated_cert.as_mut().unwrap().cert = "x".into(), "deprecated_cert: cert"),
            (
                |w| {
                    let other = w.api_security.deprecated_cert.clone().unwrap().private_key;
                    w.api_security.platform_cert.as_mut().unwrap().private_key = other;
                },
                "not the key of cert",
            ),
        ];
        for (breaks, expected) in broken {
            let mut world = World::builtin();
            breaks(&mut world);
            let error = world.validate().unwrap_err().to_string();
            assert!(error.contains(expected), "{error:?} should mention {expected:?}");
        }
        let mut world = World::builtin();
        world.api_security.deprecated_cert = None;
        world.accounts[0].api_security.as_mut().unwrap().rotation = true;
        assert!(world.validate().unwrap_err().to_string().contains("rotation"));
    }

    #[test]
    fn enforcement_reads_its_three_names_only() {
        for e in [Enforcement::Off, Enforcement::Optional, Enforcement::Required] {
            assert_eq!(e.as_str().parse::<Enforcement>(), Ok(e));
        }
        assert!("on".parse::<Enforcement>().is_err());
    }
}
