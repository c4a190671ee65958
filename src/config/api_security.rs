//! `WX_API_*`: the keys of WeChat's server API security, from the environment or from one stored secret (a JSON
//! object with the same names), checked once at cold start. A bad value is named by its variable, never shown.
//!
//! `WX_API_SECURITY=off` said outright makes plain calls whatever keys are still set (they are ignored, and named in
//! one warning): rolling back when WeChat's console is set back to optional is one variable. Keys with the switch
//! unset are refused, as a forgotten `on`.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::error::Error;
use crate::secrets::StoredSecret;
use crate::wechat::security::ApiSecurityKeys;
use wechat_wire::envelope::{PlatformCert, Signer, SymKey};

/// The signing origin unless `WX_API_SIGNING_ORIGIN` names another.
pub const DEFAULT_SIGNING_ORIGIN: &str = "https://api.weixin.qq.com";

/// The variables that may come from the stored secret as well as from the environment.
const KEY_VARIABLES: [&str; 6] = [
    "WX_API_SYM_KEY",
    "WX_API_SYM_SN",
    "WX_API_PRIVATE_KEY",
    "WX_API_KEY_SN",
    "WX_API_PLATFORM_CERTS",
    "WX_API_SIGNING_ORIGIN",
];

/// `WX_API_SECURITY` and where its keys are. Its `Debug` names the variables given, never their values.
#[derive(Clone)]
pub enum ApiSecuritySetting {
    /// Plain calls: the default, or `WX_API_SECURITY=off` said outright.
    Off {
        /// The `WX_API_*` variables set beside an explicit `off` (names only), ignored: the rollback when the
        /// console is set back to optional leaves them in place. [`crate::App::new`] warns of them once.
        ignored: Vec<&'static str>,
    },
    /// Encrypted and signed calls with these keys.
    On(Arc<ApiSecurityKeys>),
    /// On, with (some of) the keys in Secrets Manager or SSM: [`super::Config::resolve`] reads them.
    Stored {
        /// The secret: a JSON object whose fields are the `WX_API_*` names.
        secret: StoredSecret,
        /// The `WX_API_*` values given in the environment (keys among them).
        given: BTreeMap<&'static str, SecretString>,
    },
}

impl std::fmt::Debug for ApiSecuritySetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiSecuritySetting::Off { ignored } => f.debug_struct("Off").field("ignored", ignored).finish(),
            ApiSecuritySetting::On(keys) => f.debug_tuple("On").field(keys).finish(),
            ApiSecuritySetting::Stored { secret, given } => f
                .debug_struct("Stored")
                .field("secret", secret)
                .field("given", &given.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// Reads `WX_API_SECURITY` and, when on, its keys or where they are kept.
pub fn setting(get: &impl Fn(&str) -> Option<String>) -> Result<ApiSecuritySetting, Error> {
    let bad = |why: String| Error::Config(why);
    let stored = match (get("WX_API_SECURITY_SECRET_ARN"), get("WX_API_SECURITY_SECRET_PARAMETER")) {
        (Some(_), Some(_)) => {
            return Err(bad("set only one of WX_API_SECURITY_SECRET_ARN and WX_API_SECURITY_SECRET_PARAMETER".into()))
        }
        (Some(id), None) => Some(StoredSecret::SecretsManager { id, variable: "WX_API_SECURITY_SECRET_ARN" }),
        (None, Some(name)) => Some(StoredSecret::Parameter { name, variable: "WX_API_SECURITY_SECRET_PARAMETER" }),
        (None, None) => None,
    };
    let given: BTreeMap<&'static str, SecretString> =
        KEY_VARIABLES.into_iter().filter_map(|name| get(name).map(|value| (name, SecretString::from(value)))).collect();
    match get("WX_API_SECURITY").as_deref().map(str::to_ascii_lowercase).as_deref() {
        None if stored.is_none() && given.is_empty() => Ok(ApiSecuritySetting::Off { ignored: Vec::new() }),
        // Keys without the switch are more likely a forgotten `on` than a wish for plain calls.
        None => Err(bad("WX_API_* keys are set but WX_API_SECURITY is unset: set it to on to use them, or to off \
                         to make plain calls and ignore them"
            .into())),
        Some("off") => {
            let stored_variable = stored.as_ref().map(StoredSecret::variable);
            Ok(ApiSecuritySetting::Off { ignored: given.into_keys().chain(stored_variable).collect() })
        }
        Some("on") => match stored {
            Some(secret) => Ok(ApiSecuritySetting::Stored { secret, given }),
            None => keys(&|name| given.get(name).map(|v| v.expose_secret().to_owned()))
                .map(|keys| ApiSecuritySetting::On(Arc::new(keys))),
        },
        Some("sm" | "sm2" | "sm4" | "sm4_gcm" | "sm2withsm3" | "sm2_sm4") => {
            Err(bad("WX_API_SECURITY: the SM4_GCM / SM2withSM3 algorithms are not supported; choose AES256_GCM and \
             RSAwithSHA256 in the console's API security settings"
                .into()))
        }
        Some(_) => Err(bad("WX_API_SECURITY must be on or off".into())),
    }
}

/// The keys from the stored secret's JSON object and the environment's values (a name in both is refused).
pub fn keys_from_secret(
    text: &str,
    given: &BTreeMap<&'static str, SecretString>,
    variable: &str,
) -> Result<ApiSecurityKeys, Error> {
    let bad = |why: String| Error::Config(format!("{variable}: {why}"));
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
        return Err(bad("the secret must be a JSON object of WX_API_* fields".into()));
    };
    let mut values: BTreeMap<&'static str, String> =
        given.iter().map(|(name, value)| (*name, value.expose_secret().to_owned())).collect();
    for (name, value) in fields {
        // The emulator's key files carry the switch too: accepted when it says on.
        if name == "WX_API_SECURITY" && value.as_str().is_some_and(|v| v.eq_ignore_ascii_case("on")) {
            continue;
        }
        let Some(known) = KEY_VARIABLES.into_iter().find(|known| *known == name) else {
            return Err(bad(format!("unknown field {name} (expected some of {})", KEY_VARIABLES.join(", "))));
        };
        let Value::String(value) = value else {
            return Err(bad(format!("field {name} must be a string")));
        };
        if values.contains_key(known) {
            return Err(bad(format!("{name} is set both in the secret and in the environment")));
        }
        values.insert(known, value);
    }
    keys(&|name| values.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
}

/// Checks every key: each failure names its variable and what is wrong, never the value.
fn keys(get: &impl Fn(&str) -> Option<String>) -> Result<ApiSecurityKeys, Error> {
    let bad = |name: &str, why: String| Error::Config(format!("{name}: {why}"));
    let required =
        |name: &'static str| get(name).ok_or_else(|| bad(name, "not set (WX_API_SECURITY=on needs it)".into()));
    let sym_key =
        SymKey::from_base64(&required("WX_API_SYM_KEY")?).map_err(|e| bad("WX_API_SYM_KEY", e.to_string()))?;
    let sym_sn = serial(&required("WX_API_SYM_SN")?).ok_or_else(|| bad("WX_API_SYM_SN", SERIAL.into()))?;
    let signer = Signer::from_pem(&pem(&required("WX_API_PRIVATE_KEY")?))
        .map_err(|e| bad("WX_API_PRIVATE_KEY", e.to_string()))?;
    let key_sn = match get("WX_API_KEY_SN") {
        Some(sn) => Some(serial(&sn).ok_or_else(|| bad("WX_API_KEY_SN", SERIAL.into()))?),
        None => None,
    };
    let platform_certs = certificates(&required("WX_API_PLATFORM_CERTS")?)?;
    let signing_origin = match get("WX_API_SIGNING_ORIGIN") {
        None => DEFAULT_SIGNING_ORIGIN.to_owned(),
        Some(origin) => origin_of(&origin).ok_or_else(|| {
            bad("WX_API_SIGNING_ORIGIN", "must be a scheme and a host, like https://api.weixin.qq.com".into())
        })?,
    };
    Ok(ApiSecurityKeys { sym_key, sym_sn, signer, key_sn, platform_certs, signing_origin })
}

const SERIAL: &str = "must be the console's number: letters and digits";

/// A console number (编号): 32 hex digits in every example; letters and digits accepted.
fn serial(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| text.to_owned())
}

/// A PEM given in an environment variable, where newlines are often written as `\n`.
fn pem(text: &str) -> String {
    text.replace("\\n", "\n")
}

/// `{"<number>": "<PEM>", …}`: each certificate checked.
fn certificates(text: &str) -> Result<Vec<(String, PlatformCert)>, Error> {
    let bad = |why: String| Error::Config(format!("WX_API_PLATFORM_CERTS: {why}"));
    let Ok(Value::Object(entries)) = serde_json::from_str::<Value>(text) else {
        return Err(bad("must be a JSON object mapping each certificate's number to its PEM".into()));
    };
    if entries.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    let mut certs = Vec::with_capacity(entries.len());
    for (number, cert) in entries {
        let sn = serial(&number).ok_or_else(|| bad(format!("a certificate's number {SERIAL}")))?;
        let Value::String(cert) = cert else { return Err(bad(format!("the certificate {sn} must be a PEM string"))) };
        let cert = PlatformCert::from_pem(&pem(&cert)).map_err(|e| bad(format!("the certificate {sn}: {e}")))?;
        certs.push((sn, cert));
    }
    Ok(certs)
}

/// `scheme://host[:port]` as WeChat would write it (host in lower case, no default port), from an origin without
/// path, query, fragment or credentials: it is signed into every call, so any other spelling fails with 40234.
fn origin_of(text: &str) -> Option<String> {
    let url = reqwest::Url::parse(text.trim()).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && matches!(url.path(), "" | "/")
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    plain.then(|| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP_KEY: &str =
        include_str!("../../crates/wire/tests/fixtures/api-security/official-example-app-private-key.pem");
    const CERT: &str = include_str!("../../crates/wire/tests/fixtures/api-security/official-example-platform-cert.pem");
    const SYM_KEY: &str = "otUpngOjU+nVQaWJIC3D/yMLV17RKaP6t4Ot9tbnzLY=";

    fn env(extra: &[(&'static str, String)]) -> BTreeMap<&'static str, String> {
        let certs = serde_json::json!({ "79ba700ea147819f640941bceb38b1d1": CERT }).to_string();
        let mut vars = BTreeMap::from([
            ("WX_API_SECURITY", "on".to_owned()),
            ("WX_API_SYM_KEY", SYM_KEY.to_owned()),
            ("WX_API_SYM_SN", "fa05fe1e5bcc79b81ad5ad4b58acf787".to_owned()),
            ("WX_API_PRIVATE_KEY", APP_KEY.to_owned()),
            ("WX_API_PLATFORM_CERTS", certs),
        ]);
        vars.extend(extra.iter().cloned());
        vars
    }

    fn read(vars: &BTreeMap<&'static str, String>) -> Result<ApiSecuritySetting, Error> {
        setting(&|name: &str| vars.get(name).cloned().filter(|v| !v.is_empty()))
    }

    fn refusal(vars: &BTreeMap<&'static str, String>) -> String {
        read(vars).unwrap_err().to_string()
    }

    #[test]
    fn off_unless_switched_on_an_explicit_off_ignores_the_keys_and_keys_without_the_switch_are_refused() {
        let Ok(ApiSecuritySetting::Off { ignored }) = read(&BTreeMap::new()) else { panic!("off by default") };
        assert!(ignored.is_empty());
        let mut keys_only = env(&[]);
        keys_only.remove("WX_API_SECURITY");
        assert!(refusal(&keys_only).contains("WX_API_* keys are set but WX_API_SECURITY is unset"));
        // The rollback: the console set back to optional, the switch turned off, the keys still in place.
        for off in ["off", "OFF"] {
            let setting = read(&env(&[("WX_API_SECURITY", off.into())])).unwrap();
            let ApiSecuritySetting::Off { ignored } = &setting else { panic!("{off}: {setting:?}") };
            let expected = ["WX_API_PLATFORM_CERTS", "WX_API_PRIVATE_KEY", "WX_API_SYM_KEY", "WX_API_SYM_SN"];
            assert_eq!(ignored, &expected, "{off}");
            let shown = format!("{setting:?}");
            assert!(!shown.contains(SYM_KEY) && !shown.contains("MIIEow"), "{shown}");
        }
        let stored_off = BTreeMap::from([
            ("WX_API_SECURITY", "off".to_owned()),
            ("WX_API_SECURITY_SECRET_PARAMETER", "/wx/api-security".to_owned()),
        ]);
        let Ok(ApiSecuritySetting::Off { ignored }) = read(&stored_off) else { panic!("off") };
        assert_eq!(ignored, ["WX_API_SECURITY_SECRET_PARAMETER"]);
        assert!(refusal(&env(&[("WX_API_SECURITY", "yes".into())])).contains("must be on or off"));
        assert!(refusal(&env(&[("WX_API_SECURITY", "SM4".into())])).contains("not supported"));
    }

    #[test]
    fn the_keys_are_read_and_checked() {
        let Ok(ApiSecuritySetting::On(keys)) = read(&env(&[])) else { panic!("on") };
        assert_eq!(keys.signing_origin, DEFAULT_SIGNING_ORIGIN);
        assert_eq!(keys.key_sn, None);
        assert_eq!(keys.platform_certs[0].0, "79ba700ea147819f640941bceb38b1d1");
        // A PEM written on one line with \n escapes, as environment variables often hold it; an origin with a port.
        let escaped = APP_KEY.replace('\n', "\\n");
        let extra = [
            ("WX_API_PRIVATE_KEY", escaped),
            ("WX_API_KEY_SN", "97845f6ed842ea860df6fdf65941ff56".into()),
            ("WX_API_SIGNING_ORIGIN", "http://127.0.0.1:8088/".into()),
        ];
        let Ok(ApiSecuritySetting::On(keys)) = read(&env(&extra)) else { panic!("on") };
        assert_eq!(keys.signing_origin, "http://127.0.0.1:8088");
        for (given, signed) in
            [("HTTPS://API.Weixin.qq.com:443", "https://api.weixin.qq.com"), ("http://h:80/", "http://h")]
        {
            let Ok(ApiSecuritySetting::On(keys)) = read(&env(&[("WX_API_SIGNING_ORIGIN", given.into())])) else {
                panic!("{given}")
            };
            assert_eq!(keys.signing_origin, signed);
        }
        for refused in ["https://h/#x", "https://:pw@h", "https://u@h"] {
            assert!(
                refusal(&env(&[("WX_API_SIGNING_ORIGIN", refused.into())])).contains("scheme and a host"),
                "{refused}"
            );
        }
        assert_eq!(keys.key_sn.as_deref(), Some("97845f6ed842ea860df6fdf65941ff56"));
    }

    #[test]
    fn a_bad_value_is_named_by_its_variable_never_shown() {
        let cases: [(&'static str, &str, &str); 7] = [
            ("WX_API_SYM_KEY", "bm90IDMyIGJ5dGVz", "not the 32 of an AES-256 key"),
            ("WX_API_SYM_KEY", "secret-sym-key-value!", "not base64"),
            ("WX_API_SYM_SN", "sn with spaces", "number"),
            (
                "WX_API_PRIVATE_KEY",
                "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----",
                "RSA",
            ),
            ("WX_API_PLATFORM_CERTS", "{\"sn1\": \"not a certificate\"}", "certificate sn1"),
            ("WX_API_PLATFORM_CERTS", "[]", "JSON object"),
            ("WX_API_SIGNING_ORIGIN", "https://api.weixin.qq.com/wxa?x=1", "scheme and a host"),
        ];
        for (name, value, why) in cases {
            let message = refusal(&env(&[(name, value.to_owned())]));
            assert!(message.contains(name) && message.contains(why), "{name}: {message}");
            assert!(!message.contains(value), "{name}'s value shown: {message}");
        }
        let mut missing = env(&[]);
        missing.remove("WX_API_SYM_SN");
        assert!(refusal(&missing).contains("WX_API_SYM_SN: not set"));
    }

    #[test]
    fn an_ec_key_is_refused_as_sm2() {
        // An EC (P-256) key in SEC1 form: the console's other choice, SM2, comes as an EC key too.
        let ec = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIm6ekl7XyjyDyGR5ZWAMvnyPcf3dBqhcSkXdyAMFhMboAoGCCqGSM49\nAwEHoUQDQgAEXj2qyBVS6XjS9D/l1NgnjW3TNPI1Rq3cCUnvwFYPZ1IxuKi2L5VZ\nrMkQmJaeeYbTuWxOwi1k9aJwG9GO7nKMVQ==\n-----END EC PRIVATE KEY-----\n";
        assert!(refusal(&env(&[("WX_API_PRIVATE_KEY", ec.to_owned())])).contains("SM2"));
    }

    #[test]
    fn the_keys_may_come_from_one_stored_secret() {
        let mut given = env(&[]);
        given.remove("WX_API_SECURITY");
        let stored_vars =
            BTreeMap::from([("WX_API_SECURITY", "on".to_owned()), ("WX_API_SECURITY_SECRET_ARN", "arn:x".to_owned())]);
        assert!(matches!(read(&stored_vars), Ok(ApiSecuritySetting::Stored { .. })));
        let mut fields: serde_json::Map<String, Value> =
            given.iter().map(|(k, v)| (k.to_string(), Value::String(v.clone()))).collect();
        fields.insert("WX_API_SECURITY".into(), "on".into());
        let text = Value::Object(fields).to_string();
        let keys = keys_from_secret(&text, &BTreeMap::new(), "WX_API_SECURITY_SECRET_ARN").unwrap();
        assert_eq!(keys.sym_sn, "fa05fe1e5bcc79b81ad5ad4b58acf787");
        let given: BTreeMap<&'static str, SecretString> =
            given.into_iter().map(|(k, v)| (k, SecretString::from(v))).collect();
        let both = keys_from_secret(&text, &given, "WX_API_SECURITY_SECRET_ARN").unwrap_err().to_string();
        assert!(both.contains("both in the secret and in the environment"), "{both}");
        let odd = keys_from_secret(r#"{"WX_API_SYM_KEYS": "x"}"#, &BTreeMap::new(), "WX_API_SECURITY_SECRET_ARN");
        assert!(odd.unwrap_err().to_string().contains("unknown field WX_API_SYM_KEYS"));
    }

    #[test]
    fn debug_output_names_the_keys_given_never_their_values() {
        let mut vars = env(&[("WX_API_SECURITY_SECRET_ARN", "arn:x".into())]);
        vars.remove("WX_API_PRIVATE_KEY");
        let setting = read(&vars).unwrap();
        let shown = format!("{setting:?}");
        assert!(shown.contains("WX_API_SYM_KEY"), "{shown}");
        assert!(!shown.contains(SYM_KEY), "{shown}");
        let Ok(on) = read(&env(&[])) else { panic!("on") };
        let shown = format!("{on:?}");
        assert!(!shown.contains(SYM_KEY) && !shown.contains("MIIEow"), "{shown}");
    }
}
