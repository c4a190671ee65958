//! WeChat's server API security (服务端API安全): encrypted and signed calls to the plugin endpoints, and the checks
//! on WeChat's encrypted and signed answers.
//!
//! `wechat_wire::envelope` is the wire, shared with the emulator. [`ApiSecurity`] seals one request and opens its answer: a
//! signed envelope is verified against the platform certificate its `Wechatmp-Serial` names (or the deprecated one
//! during a rotation), its appid and timestamps checked, decrypted; a plain answer is accepted only as an error (the
//! layer's own 40230–40240, or a business error WeChat sent plain), never as a success.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::SecurityFailure;
use wechat_wire::envelope::{
    additional_data, random, random_nonce_field, signed_bytes, Envelope, PlatformCert, Signer, SymKey,
};

/// How far an answer's timestamp may be from this clock (a peer convention; WeChat documents none).
pub(crate) const FRESHNESS_SECS: u64 = 300;

const APPID: &str = "wechatmp-appid";
const TIMESTAMP: &str = "wechatmp-timestamp";
const SERIAL: &str = "wechatmp-serial";
const SIGNATURE: &str = "wechatmp-signature";
const SERIAL_DEPRECATED: &str = "wechatmp-serial-deprecated";
const SIGNATURE_DEPRECATED: &str = "wechatmp-signature-deprecated";
/// The fields the layer adds inside the plaintext, both ways.
const LAYER_FIELDS: [&str; 3] = ["_n", "_appid", "_timestamp"];

/// The keys of the console's API security page (开发 → 开发管理 → 开发设置 → API安全), checked.
#[derive(Debug)]
pub struct ApiSecurityKeys {
    /// API 对称密钥 (`WX_API_SYM_KEY`).
    pub sym_key: SymKey,
    /// 对称密钥编号 (`WX_API_SYM_SN`), the fourth field of every additional data.
    pub sym_sn: String,
    /// 应用私钥 (`WX_API_PRIVATE_KEY`): signs the requests.
    pub signer: Signer,
    /// 非对称密钥编号 (`WX_API_KEY_SN`): when set, requests carry it as `Wechatmp-Serial`.
    pub key_sn: Option<String>,
    /// 开放平台证书 by number (`WX_API_PLATFORM_CERTS`): two during a rotation.
    pub platform_certs: Vec<(String, PlatformCert)>,
    /// The scheme and host that go into `urlpath` (`WX_API_SIGNING_ORIGIN`).
    pub signing_origin: String,
}

/// The layer of one deployment: its keys and the appid every call is made as (the mini program's, or a third-party
/// platform's own).
#[derive(Debug)]
pub struct ApiSecurity {
    keys: Arc<ApiSecurityKeys>,
    appid: String,
    /// Whether the operator has been told, once per container, that an answer came signed by a retiring certificate.
    told_deprecated: AtomicBool,
}

/// A request, sealed: its body and the headers that go with it.
pub struct Sealed {
    /// `{"iv","data","authtag"}`, compact.
    pub body: Vec<u8>,
    /// `Wechatmp-*` headers, names and values.
    pub headers: Vec<(&'static str, String)>,
}

impl ApiSecurity {
    /// The layer for calls made as `appid`.
    pub fn new(keys: Arc<ApiSecurityKeys>, appid: &str) -> ApiSecurity {
        ApiSecurity { keys, appid: appid.to_owned(), told_deprecated: AtomicBool::new(false) }
    }

    /// The appid the layer signs with.
    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// `urlpath` of `path`: the signing origin and the path, without the query.
    pub fn urlpath(&self, path: &str) -> String {
        format!("{}{path}", self.keys.signing_origin)
    }

    /// `fields` (the request's JSON object) sealed for `path` at `timestamp` (unix seconds).
    pub fn seal(&self, path: &str, fields: &Map<String, Value>, timestamp: u64) -> Result<Sealed, SecurityFailure> {
        let urlpath = self.urlpath(path);
        let mut plaintext = Map::with_capacity(fields.len() + 3);
        plaintext.insert("_n".into(), Value::String(random_nonce_field().map_err(|_| SecurityFailure::NoRandomness)?));
        plaintext.insert("_appid".into(), Value::String(self.appid.clone()));
        plaintext.insert("_timestamp".into(), Value::from(timestamp));
        plaintext.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        let plaintext = serde_json::to_vec(&plaintext).expect("a JSON object serialises");
        let aad = additional_data(&urlpath, &self.appid, timestamp, &self.keys.sym_sn);
        let iv = random().map_err(|_| SecurityFailure::NoRandomness)?;
        let envelope = self.keys.sym_key.seal(iv, aad.as_bytes(), &plaintext);
        let body = serde_json::to_vec(&envelope).expect("an envelope serialises");
        let signature = self
            .keys
            .signer
            .sign(&signed_bytes(&urlpath, &self.appid, timestamp, &body))
            .map_err(|_| SecurityFailure::NoRandomness)?;
        let mut headers = vec![
            ("Wechatmp-Appid", self.appid.clone()),
            ("Wechatmp-TimeStamp", timestamp.to_string()),
            ("Wechatmp-Signature", signature),
        ];
        if let Some(sn) = &self.keys.key_sn {
            headers.push(("Wechatmp-Serial", sn.clone()));
        }
        Ok(Sealed { body, headers })
    }

    /// The answer to a sealed request on `path`, read at `now` (unix seconds): WeChat's JSON object as sent, layer
    /// fields removed. A plain answer passes only as an error.
    pub fn open(
        &self,
        path: &str,
        headers: &http::HeaderMap,
        body: &[u8],
        now: u64,
    ) -> Result<Map<String, Value>, SecurityFailure> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let signed = header(SIGNATURE).is_some() || header(SIGNATURE_DEPRECATED).is_some();
        let envelope = serde_json::from_slice::<Envelope>(body).ok();
        // A body that is not an envelope is judged as plain whatever its headers say: WeChat may or may not sign its
        // plain errors, and an error passes plain anyway; a plain success never does.
        let Some(envelope) = envelope else { return plain_error(body) };
        if !signed {
            return Err(SecurityFailure::Unsigned);
        }
        if header(APPID) != Some(self.appid.as_str()) {
            return Err(SecurityFailure::ForeignAppid(header(APPID).unwrap_or_default().to_owned()));
        }
        let timestamp: u64 = header(TIMESTAMP).and_then(|t| t.parse().ok()).ok_or(SecurityFailure::NoTimestamp)?;
        let urlpath = self.urlpath(path);
        let (cert, signature, retiring) = self.certificate(&header)?;
        if !cert.verifies(&signed_bytes(&urlpath, &self.appid, timestamp, body), signature) {
            return Err(SecurityFailure::BadSignature);
        }
        if retiring && !self.told_deprecated.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                current = header(SERIAL).unwrap_or_default(),
                retiring = header(SERIAL_DEPRECATED).unwrap_or_default(),
                "WeChat signed this answer with a platform certificate it is retiring: add the current one \
                 (API安全 → 开放平台证书) to WX_API_PLATFORM_CERTS before the old one expires"
            );
        }
        let age = now.abs_diff(timestamp);
        if age > FRESHNESS_SECS {
            return Err(SecurityFailure::Stale { age_secs: age });
        }
        self.decrypt(&envelope, &urlpath, timestamp)
    }

    /// The fields of a verified, fresh envelope, once its inner appid and timestamp match the headers'.
    fn decrypt(
        &self,
        envelope: &Envelope,
        urlpath: &str,
        timestamp: u64,
    ) -> Result<Map<String, Value>, SecurityFailure> {
        let aad = additional_data(urlpath, &self.appid, timestamp, &self.keys.sym_sn);
        let plaintext = self.keys.sym_key.open(envelope, aad.as_bytes()).map_err(|_| SecurityFailure::Undecryptable)?;
        let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(&plaintext) else {
            return Err(SecurityFailure::Undecryptable);
        };
        if answer.get("_appid").and_then(Value::as_str) != Some(self.appid.as_str()) {
            return Err(SecurityFailure::Mismatch("_appid"));
        }
        if answer.get("_timestamp").and_then(Value::as_u64) != Some(timestamp) {
            return Err(SecurityFailure::Mismatch("_timestamp"));
        }
        for field in LAYER_FIELDS {
            answer.shift_remove(field);
        }
        Ok(answer)
    }

    /// The certificate the answer names, the signature made with it, and whether it is the deprecated one (during a
    /// rotation; the operator is told once, after it verified, to add the new certificate).
    fn certificate<'h>(
        &self,
        header: &impl Fn(&str) -> Option<&'h str>,
    ) -> Result<(&PlatformCert, &'h str, bool), SecurityFailure> {
        let known = |sn: &str| self.keys.platform_certs.iter().find(|(known, _)| known == sn).map(|(_, cert)| cert);
        if let (Some(cert), Some(signature)) = (header(SERIAL).and_then(known), header(SIGNATURE)) {
            return Ok((cert, signature, false));
        }
        let deprecated = header(SERIAL_DEPRECATED).and_then(known);
        if let (Some(cert), Some(signature)) = (deprecated, header(SIGNATURE_DEPRECATED)) {
            return Ok((cert, signature, true));
        }
        Err(SecurityFailure::UnknownCertificate(header(SERIAL).unwrap_or_default().to_owned()))
    }
}

/// A plain answer to a sealed request: WeChat's error (the layer's own, or a business error sent plain), never a
/// success (a success is always sealed, so a plain one did not come from WeChat's layer).
fn plain_error(body: &[u8]) -> Result<Map<String, Value>, SecurityFailure> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(answer)) if crate::wechat::errcode(&answer) != 0 => Ok(answer),
        Ok(Value::Object(_)) => Err(SecurityFailure::PlainSuccess),
        _ => Err(SecurityFailure::NotAnEnvelope),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP_KEY: &str =
        include_str!("../../../crates/wire/tests/fixtures/api-security/official-example-app-private-key.pem");
    const PLATFORM_KEY: &str = include_str!("../../../crates/wire/tests/fixtures/api-security/test-platform-key.pem");
    const PLATFORM_CERT: &str = include_str!("../../../crates/wire/tests/fixtures/api-security/test-platform-cert.pem");
    const SYM_KEY: &str = "otUpngOjU+nVQaWJIC3D/yMLV17RKaP6t4Ot9tbnzLY=";
    const APPID: &str = "wxba6223c06417af7b";
    const PATH: &str = "/wxa/plugin";
    const NOW: u64 = 1_800_000_000;

    fn layer(certs: &[(&str, &str)]) -> ApiSecurity {
        let keys = ApiSecurityKeys {
            sym_key: SymKey::from_base64(SYM_KEY).unwrap(),
            sym_sn: "fa05fe1e5bcc79b81ad5ad4b58acf787".into(),
            signer: Signer::from_pem(APP_KEY).unwrap(),
            key_sn: Some("97845f6ed842ea860df6fdf65941ff56".into()),
            platform_certs: certs
                .iter()
                .map(|(sn, pem)| (sn.to_string(), PlatformCert::from_pem(pem).unwrap()))
                .collect(),
            signing_origin: "https://api.weixin.qq.com".into(),
        };
        ApiSecurity::new(Arc::new(keys), APPID)
    }

    /// WeChat's side of an answer: `fields` sealed at `timestamp`, signed as `appid` by the platform key.
    fn answer(fields: Value, appid: &str, timestamp: u64) -> (http::HeaderMap, Vec<u8>) {
        let mut plaintext =
            serde_json::json!({"_n": "abcdefghijklmnopqrstuv", "_appid": appid, "_timestamp": timestamp});
        plaintext.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        let urlpath = format!("https://api.weixin.qq.com{PATH}");
        let aad = additional_data(&urlpath, appid, timestamp, "fa05fe1e5bcc79b81ad5ad4b58acf787");
        let envelope =
            SymKey::from_base64(SYM_KEY).unwrap().seal([7; 12], aad.as_bytes(), plaintext.to_string().as_bytes());
        let body = serde_json::to_vec(&envelope).unwrap();
        let signature =
            Signer::from_pem(PLATFORM_KEY).unwrap().sign(&signed_bytes(&urlpath, appid, timestamp, &body)).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("Wechatmp-Appid", appid.parse().unwrap());
        headers.insert("Wechatmp-TimeStamp", timestamp.to_string().parse().unwrap());
        headers.insert("Wechatmp-Serial", "current".parse().unwrap());
        headers.insert("Wechatmp-Signature", signature.parse().unwrap());
        (headers, body)
    }

    #[test]
    fn a_sealed_request_carries_the_layer_fields_and_verifies_as_wechat_would() {
        let layer = layer(&[("current", PLATFORM_CERT)]);
        let fields = serde_json::json!({"action": "list"});
        let sealed = layer.seal(PATH, fields.as_object().unwrap(), NOW).unwrap();
        let header = |name: &str| sealed.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        assert_eq!(header("Wechatmp-Appid").as_deref(), Some(APPID));
        assert_eq!(header("Wechatmp-TimeStamp"), Some(NOW.to_string()));
        assert_eq!(header("Wechatmp-Serial").as_deref(), Some("97845f6ed842ea860df6fdf65941ff56"));
        let urlpath = "https://api.weixin.qq.com/wxa/plugin";
        let signed = signed_bytes(urlpath, APPID, NOW, &sealed.body);
        assert!(Signer::from_pem(APP_KEY).unwrap().verifies(&signed, &header("Wechatmp-Signature").unwrap()));
        let envelope: Envelope = serde_json::from_slice(&sealed.body).unwrap();
        let aad = additional_data(urlpath, APPID, NOW, "fa05fe1e5bcc79b81ad5ad4b58acf787");
        let plaintext: Value =
            serde_json::from_slice(&SymKey::from_base64(SYM_KEY).unwrap().open(&envelope, aad.as_bytes()).unwrap())
                .unwrap();
        assert_eq!(plaintext["action"], "list");
        assert_eq!((plaintext["_appid"].as_str(), plaintext["_timestamp"].as_u64()), (Some(APPID), Some(NOW)));
        let n = plaintext["_n"].as_str().unwrap();
        assert!((22..=43).contains(&n.len()), "16 to 32 bytes of base64: {n}");
        let again = layer.seal(PATH, fields.as_object().unwrap(), NOW).unwrap();
        assert_ne!(again.body, sealed.body, "a fresh IV and _n every time");
    }

    #[test]
    fn a_verified_answer_opens_without_the_layer_fields() {
        let layer = layer(&[("current", PLATFORM_CERT)]);
        let (headers, body) = answer(serde_json::json!({"errcode": 0, "errmsg": "ok", "plugin_list": []}), APPID, NOW);
        let opened = layer.open(PATH, &headers, &body, NOW + 10).unwrap();
        assert_eq!(Value::Object(opened), serde_json::json!({"errcode": 0, "errmsg": "ok", "plugin_list": []}));
    }

    #[test]
    fn every_failed_check_refuses_the_answer() {
        let layer = layer(&[("current", PLATFORM_CERT)]);
        let ok = serde_json::json!({"errcode": 0, "errmsg": "ok"});
        let (headers, body) = answer(ok.clone(), APPID, NOW);
        let mut tampered = body.clone();
        let at = tampered.len() / 2;
        tampered[at] ^= 1;
        assert!(matches!(
            layer.open(PATH, &headers, &tampered, NOW),
            Err(SecurityFailure::BadSignature | SecurityFailure::NotAnEnvelope)
        ));
        assert_eq!(layer.open(PATH, &headers, &body, NOW + 301), Err(SecurityFailure::Stale { age_secs: 301 }));
        let (foreign_headers, foreign_body) = answer(ok.clone(), "wxanother00000001", NOW);
        assert!(matches!(
            layer.open(PATH, &foreign_headers, &foreign_body, NOW),
            Err(SecurityFailure::ForeignAppid(_))
        ));
        let mut unknown = headers.clone();
        unknown.insert("Wechatmp-Serial", "someotherserial".parse().unwrap());
        assert!(matches!(layer.open(PATH, &unknown, &body, NOW), Err(SecurityFailure::UnknownCertificate(_))));
        let other_path = layer.open("/wxa/devplugin", &headers, &body, NOW);
        assert_eq!(other_path, Err(SecurityFailure::BadSignature));
        let mut unsigned = headers.clone();
        unsigned.remove("Wechatmp-Signature");
        assert_eq!(layer.open(PATH, &unsigned, &body, NOW), Err(SecurityFailure::Unsigned));
        // A plain answer: WeChat's error passes on to the usual mapping; a plain success does not.
        let none = http::HeaderMap::new();
        let plain_error = br#"{"errcode":40234,"errmsg":"invalid signature rid: 1"}"#;
        assert_eq!(crate::wechat::errcode(&layer.open(PATH, &none, plain_error, NOW).unwrap()), 40234);
        assert_eq!(layer.open(PATH, &none, br#"{"errcode":0,"errmsg":"ok"}"#, NOW), Err(SecurityFailure::PlainSuccess));
        let signed_plain = layer.open(PATH, &headers, plain_error, NOW).unwrap();
        assert_eq!(
            crate::wechat::errcode(&signed_plain),
            40234,
            "a plain error with signature headers is still WeChat's"
        );
        let signed_success = layer.open(PATH, &headers, br#"{"errcode":0,"errmsg":"ok"}"#, NOW);
        assert_eq!(signed_success, Err(SecurityFailure::PlainSuccess));
    }

    #[test]
    fn during_a_rotation_the_deprecated_certificate_is_accepted() {
        // This deployment knows only the retiring certificate, which WeChat still signs with beside the new one.
        let layer = layer(&[("retiring", PLATFORM_CERT)]);
        let (mut headers, body) = answer(serde_json::json!({"errcode": 0}), APPID, NOW);
        let signature = headers.remove("Wechatmp-Signature").unwrap();
        headers.insert("Wechatmp-Serial", "brandnew".parse().unwrap());
        headers.insert("Wechatmp-Signature", "AAAA".parse().unwrap());
        headers.insert("Wechatmp-Serial-Deprecated", "retiring".parse().unwrap());
        headers.insert("Wechatmp-Signature-Deprecated", signature);
        let mut forged = headers.clone();
        forged.insert("Wechatmp-Signature-Deprecated", "AAAA".parse().unwrap());
        assert_eq!(layer.open(PATH, &forged, &body, NOW), Err(SecurityFailure::BadSignature));
        assert!(!layer.told_deprecated.load(Ordering::Relaxed), "no warning for an answer that did not verify");
        assert!(layer.open(PATH, &headers, &body, NOW).is_ok());
        assert!(layer.told_deprecated.load(Ordering::Relaxed));
    }
}
