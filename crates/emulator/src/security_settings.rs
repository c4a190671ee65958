//! The API security settings of the emulator's world (demo material, not secrets): what an account or a platform
//! set in its console (enforcement, keys), and the platform certificates WeChat signs its answers with. Checked
//! when a world loads; the protocol that uses them is [`super::api_security`].

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::invalid::Invalid;
use wechat_wire::envelope::{PlatformCert, Signer, SymKey};

/// serde's `skip_serializing_if` for flags that are off by default.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// The signing origin when a state file names none.
pub const DEFAULT_SIGNING_ORIGIN: &str = "https://api.weixin.qq.com";

/// Whether an account's (or platform's) API security is switched on in its console, and how strictly WeChat holds
/// plain calls to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Switched off: plain calls only; a secured call answers 40238, as if no keys were set.
    #[default]
    Off,
    /// Plain calls answered plain; secured calls checked and answered secured.
    Optional,
    /// Secured calls only: a plain call answers 40233.
    Required,
}

impl Enforcement {
    /// `off`, `optional` or `required`, as in the state file.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Off => "off",
            Enforcement::Optional => "optional",
            Enforcement::Required => "required",
        }
    }
}

impl FromStr for Enforcement {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "off" => Ok(Enforcement::Off),
            "optional" => Ok(Enforcement::Optional),
            "required" => Ok(Enforcement::Required),
            other => {
                Err(Invalid::World(format!("API security enforcement is off, optional or required, not {other:?}")))
            }
        }
    }
}

/// One account's or platform's API security keys, as its console shows them after 随机生成密钥对 (the emulator
/// keeps the app's private key because, like the console, it generated the pair for the user, and checks the
/// request signatures with its public half). The keys of the built-in state are demo material made for the
/// emulator, not secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppApiSecurity {
    /// Whether the layer is on and whether plain calls are still answered; `off` when absent.
    #[serde(default)]
    pub enforcement: Enforcement,
    /// API 对称密钥: standard base64 of 32 bytes (AES-256-GCM, both directions).
    pub sym_key: String,
    /// 对称密钥编号: 32 hex characters, the last field of every additional data.
    pub sym_sn: String,
    /// 应用私钥: an RSA key of 2048 bits or more, PEM (PKCS#1 as the console downloads it, or PKCS#8).
    pub app_private_key: String,
    /// 非对称密钥编号: 32 hex characters.
    pub app_key_sn: String,
    /// Certificate rotation in progress: answers also carry `Wechatmp-Serial-Deprecated` and
    /// `Wechatmp-Signature-Deprecated`, signed with the world's `deprecated_cert`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub rotation: bool,
}

/// The platform side of API security, one for the whole world: where `urlpath` starts, and the platform
/// certificates (开放平台证书) the answers are signed with. The built-in state's are demo material made for the
/// emulator (self-signed), not secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlatformApiSecurity {
    /// Scheme and host that `urlpath` starts with, e.g. `https://api.weixin.qq.com` (the default), whatever host
    /// the emulator is called on.
    pub signing_origin: String,
    /// The current certificate: its number is `Wechatmp-Serial` and its key signs every secured answer. Needed as
    /// soon as one account or platform has keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_cert: Option<PlatformCertKeys>,
    /// The certificate about to expire, used by accounts with `rotation` (and needed by them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecated_cert: Option<PlatformCertKeys>,
}

impl Default for PlatformApiSecurity {
    fn default() -> Self {
        PlatformApiSecurity {
            signing_origin: DEFAULT_SIGNING_ORIGIN.to_owned(),
            platform_cert: None,
            deprecated_cert: None,
        }
    }
}

/// A platform certificate with its number and private key (which only WeChat, here the emulator, holds).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformCertKeys {
    /// 证书编号: 32 hex characters, as the MP page shows it (not the X.509 serial).
    pub sn: String,
    /// The X.509 certificate, PEM, as the MP page offers it for download.
    pub cert: String,
    /// The certificate's RSA private key, PEM.
    pub private_key: String,
}

impl PlatformCertKeys {
    pub(crate) fn signer(&self) -> Result<Signer, Invalid> {
        Signer::from_pem(&self.private_key).map_err(|e| Invalid::World(format!("private_key: {e}")))
    }

    /// Parses, and checks that the key is the certificate's.
    fn check(&self) -> Result<(), Invalid> {
        check_sn("sn", &self.sn)?;
        let cert = PlatformCert::from_pem(&self.cert).map_err(|e| Invalid::World(format!("cert: {e}")))?;
        let probe = b"wx-plugin-manager emulator: does the key match the certificate?";
        let signature = self.signer()?.sign(probe).map_err(|e| Invalid::World(e.to_string()))?;
        if !cert.verifies(probe, &signature) {
            return Err(Invalid::World("private_key is not the key of cert".to_owned()));
        }
        Ok(())
    }
}

impl AppApiSecurity {
    fn check(&self) -> Result<(), Invalid> {
        SymKey::from_base64(&self.sym_key).map_err(|e| Invalid::World(format!("sym_key: {e}")))?;
        check_sn("sym_sn", &self.sym_sn)?;
        Signer::from_pem(&self.app_private_key).map_err(|e| Invalid::World(format!("app_private_key: {e}")))?;
        check_sn("app_key_sn", &self.app_key_sn)
    }
}

fn check_sn(field: &str, sn: &str) -> Result<(), Invalid> {
    if sn.len() == 32 && sn.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(Invalid::World(format!("{field} must be 32 hex characters")))
    }
}

/// What serde cannot check of the world's API security: keys that parse, certificates that match their keys, a
/// signing origin of scheme and host only, and the certificates the accounts' settings need.
impl PlatformApiSecurity {
    pub(crate) fn validate<'a>(
        &self,
        apps: impl Iterator<Item = (&'a str, &'a AppApiSecurity)>,
    ) -> Result<(), Invalid> {
        let origin = &self.signing_origin;
        let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
        if host.is_none_or(|h| h.is_empty() || h.contains(['/', '?', '#'])) {
            return Err(Invalid::World(format!(
                "api_security.signing_origin must be a scheme and a host without a path, e.g. \
                 {DEFAULT_SIGNING_ORIGIN}, not {origin:?}"
            )));
        }
        for (name, cert) in [("platform_cert", &self.platform_cert), ("deprecated_cert", &self.deprecated_cert)] {
            if let Some(cert) = cert {
                cert.check().map_err(|e| Invalid::World(format!("api_security.{name}: {e}")))?;
            }
        }
        for (appid, keys) in apps {
            keys.check().map_err(|e| Invalid::World(format!("{appid}: api_security: {e}")))?;
            if self.platform_cert.is_none() {
                return Err(Invalid::World(format!(
                    "{appid} has api_security keys: the world's api_security.platform_cert is needed"
                )));
            }
            if keys.rotation && self.deprecated_cert.is_none() {
                return Err(Invalid::World(format!(
                    "{appid}: api_security.rotation needs the world's api_security.deprecated_cert"
                )));
            }
        }
        Ok(())
    }
}
