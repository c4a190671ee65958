//! The wire of WeChat's server API security (服务端API安全), the same on both sides: the AES-256-GCM envelope
//! `{"iv","data","authtag"}`, its additional data `urlpath|appid|timestamp|sym_sn`, and the RSASSA-PSS-SHA256 (salt
//! 32) signature over `urlpath\nappid\ntimestamp\nbody`.
//!
//! Built on the `ring` and `webpki` crates that rustls already brings (no second crypto library in the artefact). Keys
//! are held inside ring's types, which print nothing of them.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RsaKeyPair, UnparsedPublicKey, RSA_PSS_2048_8192_SHA256, RSA_PSS_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// The GCM tag's length: split off the ciphertext and sent as `authtag`.
const TAG_LEN: usize = 16;

/// Why a key, a serial number or a certificate is not usable. Says what is wrong, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The symmetric key is not standard base64.
    #[error("not base64")]
    NotBase64,
    /// The symmetric key does not decode to 32 bytes (AES-256).
    #[error("decodes to {0} bytes, not the 32 of an AES-256 key")]
    WrongLength(usize),
    /// An SM2 key (SM2withSM3), which is not supported.
    #[error("an EC (SM2) key: only RSAwithSHA256 is supported; choose RSA in the console's API security settings")]
    Sm2,
    /// No PEM block of the expected kind.
    #[error("no PEM {0} in it")]
    NotPem(&'static str),
    /// A PEM block that is not an RSA key of 2048 bits or more.
    #[error("not an RSA private key of at least 2048 bits ({0})")]
    NotRsa(String),
    /// A certificate that does not parse as X.509.
    #[error("not an X.509 certificate ({0})")]
    NotCertificate(String),
}

/// Why an envelope or a signature did not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// `iv`, `data` or `authtag` is not base64 of the right length.
    #[error("the envelope's {0} is not base64 of the right length")]
    Malformed(&'static str),
    /// The tag does not match: another key, other additional data, or altered bytes.
    #[error("the envelope does not decrypt with this key and additional data")]
    Undecryptable,
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// The system's random source failed.
    #[error("no randomness available")]
    NoRandom,
}

/// An encrypted body as it travels: three standard-base64 strings, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The 12-byte nonce (16 base64 characters).
    pub iv: String,
    /// The ciphertext, without its tag.
    pub data: String,
    /// The 16-byte GCM tag.
    pub authtag: String,
}

/// The additional data both directions authenticate: `urlpath|appid|timestamp|sym_sn`.
pub fn additional_data(urlpath: &str, appid: &str, timestamp: u64, sym_sn: &str) -> String {
    format!("{urlpath}|{appid}|{timestamp}|{sym_sn}")
}

/// The bytes a signature covers: `urlpath\nappid\ntimestamp\nbody`, four fields, no trailing newline.
pub fn signed_bytes(urlpath: &str, appid: &str, timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{urlpath}\n{appid}\n{timestamp}\n").into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Fresh random bytes from the system.
pub fn random<const N: usize>() -> Result<[u8; N], SealError> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).map_err(|_| SealError::NoRandom)?;
    Ok(bytes)
}

/// `_n`: 16 to 32 random bytes, unpadded base64, its length itself random, as the guide recommends.
pub fn random_nonce_field() -> Result<String, SealError> {
    let bytes: [u8; 33] = random()?;
    let len = 16 + (bytes[32] as usize % 17);
    Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes[..len]))
}

/// The symmetric key (API 对称密钥): AES-256-GCM, both directions.
pub struct SymKey(LessSafeKey);

impl std::fmt::Debug for SymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymKey([REDACTED])")
    }
}

impl SymKey {
    /// The key as the console shows it: standard base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Result<SymKey, KeyError> {
        let bytes = BASE64.decode(text.trim()).map_err(|_| KeyError::NotBase64)?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| KeyError::WrongLength(bytes.len()))?;
        Ok(SymKey(LessSafeKey::new(key)))
    }

    /// `plaintext` encrypted under `iv` (fresh for every message) and authenticated with `aad`.
    pub fn seal(&self, iv: [u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Envelope {
        let mut data = plaintext.to_vec();
        let nonce = Nonce::assume_unique_for_key(iv);
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut data)
            .expect("AES-GCM seals any message shorter than 64 GiB");
        Envelope { iv: BASE64.encode(iv), data: BASE64.encode(&data), authtag: BASE64.encode(tag.as_ref()) }
    }

    /// The plaintext of `envelope`, if it was sealed with this key and `aad`.
    pub fn open(&self, envelope: &Envelope, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let iv: [u8; NONCE_LEN] = decode(&envelope.iv, "iv")?.try_into().map_err(|_| SealError::Malformed("iv"))?;
        let tag = decode(&envelope.authtag, "authtag")?;
        if tag.len() != TAG_LEN {
            return Err(SealError::Malformed("authtag"));
        }
        let mut data = decode(&envelope.data, "data")?;
        data.extend_from_slice(&tag);
        let nonce = Nonce::assume_unique_for_key(iv);
        let plaintext = self.0.open_in_place(nonce, Aad::from(aad), &mut data).map_err(|_| SealError::Undecryptable)?;
        Ok(plaintext.to_vec())
    }
}

fn decode(text: &str, field: &'static str) -> Result<Vec<u8>, SealError> {
    BASE64.decode(text).map_err(|_| SealError::Malformed(field))
}

/// An RSA private key that signs with RSASSA-PSS-SHA256, salt 32 (the salt ring uses for SHA-256).
pub struct Signer(RsaKeyPair);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer([REDACTED])")
    }
}

impl Signer {
    /// The key as the console downloads it (PKCS#1, `BEGIN RSA PRIVATE KEY`) or as PKCS#8 (`BEGIN PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Signer, KeyError> {
        let key = match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
            Ok(key) => key,
            Err(_) => return Err(KeyError::NotPem("private key")),
        };
        let pair = match &key {
            PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Sec1(_) => return Err(KeyError::Sm2),
            _ => return Err(KeyError::NotPem("RSA private key")),
        };
        pair.map(Signer).map_err(|e| match (&key, e.to_string().as_str()) {
            // A PKCS#8 key that ring refuses for its algorithm is an EC one here: the console's other choice is SM2.
            (PrivateKeyDer::Pkcs8(_), "InvalidEncoding") if pem_is_ec(pem) => KeyError::Sm2,
            (_, why) => KeyError::NotRsa(why.to_owned()),
        })
    }

    /// The signature of `message`, standard base64 (randomised: the same message signs differently every time).
    pub fn sign(&self, message: &[u8]) -> Result<String, SealError> {
        let mut signature = vec![0u8; self.0.public().modulus_len()];
        self.0.sign(&RSA_PSS_SHA256, &SystemRandom::new(), message, &mut signature).map_err(|_| SealError::NoRandom)?;
        Ok(BASE64.encode(signature))
    }

    /// Whether `signature` (base64) is this key's over `message`: the public half, as WeChat holds it.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(signature) = BASE64.decode(signature) else { return false };
        UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, self.0.public().as_ref()).verify(message, &signature).is_ok()
    }
}

/// Whether a PKCS#8 PEM holds an EC key (its algorithm OID, id-ecPublicKey, in the DER).
fn pem_is_ec(pem: &str) -> bool {
    const ID_EC_PUBLIC_KEY: [u8; 9] = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    match PrivateKeyDer::from_pem_slice(pem.as_bytes()) {
        Ok(PrivateKeyDer::Pkcs8(der)) => {
            der.secret_pkcs8_der().windows(ID_EC_PUBLIC_KEY.len()).any(|w| w == ID_EC_PUBLIC_KEY)
        }
        _ => false,
    }
}

/// A platform certificate (开放平台证书): the public key WeChat's answers are signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformCert(CertificateDer<'static>);

impl PlatformCert {
    /// The certificate as the console shows it (PEM), checked to parse with an RSA key.
    pub fn from_pem(pem: &str) -> Result<PlatformCert, KeyError> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|_| KeyError::NotPem("certificate"))?;
        webpki::EndEntityCert::try_from(&der).map_err(|e| KeyError::NotCertificate(format!("{e:?}")))?;
        Ok(PlatformCert(der))
    }

    /// Whether `signature` (base64) is the certificate key's RSASSA-PSS-SHA256 signature over `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(signature) = BASE64.decode(signature) else { return false };
        let Ok(cert) = webpki::EndEntityCert::try_from(&self.0) else { return false };
        cert.verify_signature(webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY, message, &signature).is_ok()
    }
}
