//! WXBizMsgCrypt, as WeChat signs and encrypts what it pushes to a third-party platform (the component_verify_ticket,
//! authorisation events): SHA-1 over the sorted (token, timestamp, nonce, Encrypt), AES-256-CBC with the key's first
//! 16 bytes as IV, PKCS#7 padding to 32-byte blocks, and a plaintext of 16 random bytes, the message's length
//! (big-endian u32), the message, and the platform's appid.

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use ring::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY};
use subtle::ConstantTimeEq;

type Encryptor = cbc::Encryptor<aes::Aes256>;
type Decryptor = cbc::Decryptor<aes::Aes256>;

/// WeChat pads to 32-byte blocks, not AES's 16: pad values run from 1 to 32.
const BLOCK: usize = 32;

/// Why a push was refused. The codes are those of WeChat's own samples.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    /// `msg_signature` is not the SHA-1 of the token, timestamp, nonce and `Encrypt`.
    #[error("msg_signature does not match (-40001)")]
    Signature,
    /// The platform's configured EncodingAESKey is unusable (-40004).
    #[error("the EncodingAESKey is not 43 base64 characters")]
    Key,
    /// The `Encrypt` field cannot be decoded.
    #[error("Encrypt is not base64 (-40010)")]
    Base64,
    /// The padding or the length field is wrong: not encrypted with this key, or damaged.
    #[error("the ciphertext does not decrypt to a well-formed message (-40007)")]
    Malformed,
    /// The message ends with another appid than the platform's.
    #[error("the message is for another appid (-40005)")]
    AppId,
}

impl CryptError {
    /// The error code WeChat's sample libraries give.
    pub fn code(&self) -> i64 {
        match self {
            CryptError::Signature => -40001,
            CryptError::Key => -40004,
            CryptError::AppId => -40005,
            CryptError::Malformed => -40007,
            CryptError::Base64 => -40010,
        }
    }
}

/// One platform's token, AES key and appid.
pub struct MsgCrypt {
    token: secrecy::SecretString,
    key: [u8; 32],
    appid: String,
}

impl std::fmt::Debug for MsgCrypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgCrypt").field("appid", &self.appid).finish_non_exhaustive()
    }
}

/// `sha1_hex` of the parts sorted as byte strings and joined without separators.
pub fn signature(parts: &mut [&str]) -> String {
    parts.sort_unstable();
    let digest = digest(&SHA1_FOR_LEGACY_USE_ONLY, parts.concat().as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl MsgCrypt {
    /// `encoding_aes_key` is the platform's 43-character EncodingAESKey. Its last character carries two bits that
    /// WeChat ignores and that are often not zero, so it is decoded leniently.
    pub fn new(token: &str, encoding_aes_key: &str, appid: &str) -> Result<MsgCrypt, CryptError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptError::Key);
        }
        let lenient = GeneralPurpose::new(
            &alphabet::STANDARD,
            GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let bytes = lenient.decode(format!("{encoding_aes_key}=")).map_err(|_| CryptError::Key)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptError::Key)?;
        Ok(MsgCrypt { token: token.to_owned().into(), key, appid: appid.to_owned() })
    }

    /// The `msg_signature` of an `Encrypt` value sent with `timestamp` and `nonce`.
    pub fn msg_signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        use secrecy::ExposeSecret;
        signature(&mut [self.token.expose_secret(), timestamp, nonce, encrypt])
    }

    /// Checks `msg_signature` (in constant time), then decrypts `encrypt`: the message, its appid trailer checked.
    pub fn open(&self, msg_signature: &str, timestamp: &str, nonce: &str, encrypt: &str) -> Result<String, CryptError> {
        let expected = self.msg_signature(timestamp, nonce, encrypt);
        if !bool::from(expected.as_bytes().ct_eq(msg_signature.trim().to_ascii_lowercase().as_bytes())) {
            return Err(CryptError::Signature);
        }
        self.decrypt(encrypt)
    }

    /// Decrypts an `Encrypt` value without looking at any signature.
    pub fn decrypt(&self, encrypt: &str) -> Result<String, CryptError> {
        let mut data = STANDARD.decode(encrypt.trim()).map_err(|_| CryptError::Base64)?;
        if data.is_empty() || data.len() % 16 != 0 {
            return Err(CryptError::Malformed);
        }
        let decryptor = Decryptor::new(&self.key.into(), self.key[..16].into());
        let plain = decryptor.decrypt_padded_mut::<NoPadding>(&mut data).map_err(|_| CryptError::Malformed)?;
        let pad = usize::from(*plain.last().ok_or(CryptError::Malformed)?);
        if !(1..=BLOCK).contains(&pad) || pad > plain.len() {
            return Err(CryptError::Malformed);
        }
        let full = &plain[..plain.len() - pad];
        if full.len() < 20 {
            return Err(CryptError::Malformed);
        }
        let length = u32::from_be_bytes(full[16..20].try_into().expect("four bytes")) as usize;
        let rest = &full[20..];
        if length > rest.len() {
            return Err(CryptError::Malformed);
        }
        let (message, appid) = rest.split_at(length);
        if !bool::from(appid.ct_eq(self.appid.as_bytes())) {
            return Err(CryptError::AppId);
        }
        String::from_utf8(message.to_vec()).map_err(|_| CryptError::Malformed)
    }

    /// Encrypts `message` with the given 16 random bytes (tests use fixed ones; [`MsgCrypt::encrypt`] draws them).
    pub fn encrypt_with(&self, message: &str, random: &[u8; 16]) -> String {
        let mut full = Vec::with_capacity(20 + message.len() + self.appid.len() + BLOCK);
        full.extend_from_slice(random);
        full.extend_from_slice(&(message.len() as u32).to_be_bytes());
        full.extend_from_slice(message.as_bytes());
        full.extend_from_slice(self.appid.as_bytes());
        let pad = BLOCK - full.len() % BLOCK;
        full.extend(std::iter::repeat_n(pad as u8, pad));
        let length = full.len();
        let encryptor = Encryptor::new(&self.key.into(), self.key[..16].into());
        let cipher = encryptor.encrypt_padded_mut::<NoPadding>(&mut full, length).expect("padded to whole blocks");
        STANDARD.encode(cipher)
    }

    /// Encrypts `message` with 16 random alphanumerics, as WeChat's samples do.
    pub fn encrypt(&self, message: &str) -> String {
        use rand::distr::{Alphanumeric, SampleString};
        let random = Alphanumeric.sample_string(&mut rand::rng(), 16);
        let random: [u8; 16] = random.as_bytes().try_into().expect("16 ASCII characters");
        self.encrypt_with(message, &random)
    }
}

#[cfg(test)]
mod tests {
    //! Known answers from WeChat's own documents and samples (../shared/spec/third-party-platform.md §12).
    use super::*;

    const T1_ENCRYPT: &str = "D7yzvUNAL930rd28wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4VtsdvE//1vr7oAbqjDv8KenVp+ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5DkyuzkhQN8OBqCzFhizGmy0xpM0MEA4agpvE+RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2ltsoyfbDR7Is6ookXIFxTfyeNyeHxMeT4KN5WpCDmSbTcUYrbBUlkGLJ9n/rU8YOywma6G7aTb7KZKOqCxgfoUlYEZPk4FUL/TK7ShriFDMVCLyjQJ15Ob++agDWtcxhfUfe6HIoIpRW8mKNBQiY/Jd1svvuskA1wLef1RTtzKfMpagSCX/laZINmdnX4zrF6kIaR9P4xQrWXbsTFHTYe0Mg==";
    const T1_MSG: &str = "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>\n<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>\n<CreateTime>1715943329</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n<Event><![CDATA[debug_demo]]></Event>\n<debug_str><![CDATA[hello world]]></debug_str>\n</xml>";
    const T3_ENCRYPT: &str = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";
    const T3_MSG: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>";
    const T4_ENCRYPT: &str = "mfBCs65c67CeJw22u4VT2TD73q5H06+ocrAIxswCaeZ/d/Lw0msSZFHY0teqgSYiI1zR2gD2DKrB3TIrmX/liNSDrGqS8jSI/WPeKB5VPr7Ezr7gomZAyGCwJSgT1TRFWPfONGJMxuj2nk4faTuspAuVIFQ6SHwZuJBZC7mcJp7Cgr9cUhATQWDbOPaE7ukZBTV2YqyzH+UI2AK+J1S47cE79k1RX8t0hcTz/O0hlK8DGXKnvYv88qKQcI7z4iaajqHfRVZKBNyOODabs+It+ZfM3dWTeFcPgDbGtIEnpt/EDtuuA/zMvtkaKdHdswPnVZQ+xdwbYr3ldGvfT8HlEYEgkgKaThxTFobVlwzu2ZkXCjicbP3xdr15Iq48ObgzPpqYuZ3IEoyggZDKClquk0u0orMck4GTF/XyE8yGzc4=";
    const T6_ENCRYPT: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";
    const T6_MSG: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>";
    const NONCANONICAL_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const WECOM_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

    fn t1() -> MsgCrypt {
        MsgCrypt::new("AAAAA", &"A".repeat(43), "wx134c8103faa5a59e").unwrap()
    }

    #[test]
    fn t1_the_official_third_party_push_verifies_and_decrypts() {
        let c = t1();
        assert_eq!(signature(&mut ["AAAAA", "1715943329", "1590219412"]), "cc0c594499c1634947d5b502f158ee518947db27");
        assert_eq!(c.msg_signature("1715943329", "1590219412", T1_ENCRYPT), "6c12a4205838198b8fa631b3220723bb07f1015c");
        let msg = c.open("6c12a4205838198b8fa631b3220723bb07f1015c", "1715943329", "1590219412", T1_ENCRYPT).unwrap();
        assert_eq!(msg, T1_MSG);
        assert_eq!(msg.len(), 292);
    }

    #[test]
    fn t1_the_official_reply_encrypts_and_signs_to_the_published_values() {
        let c = t1();
        let encrypt = c.encrypt_with("<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>", b"999951349e8ee746");
        assert_eq!(
            encrypt,
            "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HAZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7"
        );
        assert_eq!(c.msg_signature("1713424427", "415670741", &encrypt), "03e0812039325c2712ef5f0f980fd14c70d6e307");
    }

    #[test]
    fn t2_a_key_whose_last_character_carries_bits_encrypts_as_the_java_sample() {
        assert!(STANDARD.decode(format!("{NONCANONICAL_KEY}=")).is_err(), "a strict decoder refuses this key");
        let c = MsgCrypt::new("pamtest", NONCANONICAL_KEY, "wxb11529c136998cb6").unwrap();
        let encrypt = c.encrypt_with("我是中文abcd123", b"aaaabbbbccccdddd");
        assert_eq!(encrypt, "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==");
        assert_eq!(c.decrypt(&encrypt).unwrap(), "我是中文abcd123");
        assert_eq!(c.msg_signature("1409304348", "xxxxxx", &encrypt), "82c962d39941aa48552f90ef55aa323dc620cc10");
    }

    #[test]
    fn t3_and_t4_the_python_and_cpp_samples_verify_and_decrypt() {
        let c = MsgCrypt::new("spamtest", NONCANONICAL_KEY, "wx2c2769f8efd9abc2").unwrap();
        let msg = c.open("5d197aaffba7e9b25a30732f161a50dee96bd5fa", "1409735669", "1320562132", T3_ENCRYPT).unwrap();
        assert_eq!(msg, T3_MSG);
        let msg = c.open("003fee52ecc56afb46c00b5c7721be87860ce785", "1410349438", "298025754", T4_ENCRYPT).unwrap();
        assert!(
            msg.contains("<CreateTime>1410349438</CreateTime>") && msg.contains("<MsgId>6057404712141979648</MsgId>")
        );
    }

    #[test]
    fn t5_and_t6_wecom_samples_including_the_30_byte_padding() {
        let c = MsgCrypt::new("QDG6eK", WECOM_KEY, "wx5823bf96d3bd56c7").unwrap();
        let echostr = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==";
        assert_eq!(
            c.open("5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "1409659589", "263014780", echostr).unwrap(),
            "1616140317555161061"
        );
        let msg = c.open("477715d11cdb4164915debcba66cb864d751f3e6", "1409659813", "1372623149", T6_ENCRYPT).unwrap();
        assert_eq!(msg, T6_MSG);
    }

    #[test]
    fn t7_another_key_with_trailing_bits_decodes() {
        assert!(MsgCrypt::new("123456", "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR", "wx49f0ab532d5d035a").is_ok());
        assert_eq!(MsgCrypt::new("t", "short", "wx").unwrap_err(), CryptError::Key);
        assert_eq!(MsgCrypt::new("t", &"!".repeat(43), "wx").unwrap_err(), CryptError::Key);
    }

    #[test]
    fn forged_signatures_other_appids_and_bad_padding_are_refused() {
        let c = t1();
        let forged = c.open("6c12a4205838198b8fa631b3220723bb07f1015d", "1715943329", "1590219412", T1_ENCRYPT);
        assert_eq!(forged.unwrap_err(), CryptError::Signature);
        let other = MsgCrypt::new("AAAAA", &"A".repeat(43), "wxsomeoneelse00001").unwrap();
        assert_eq!(other.decrypt(T1_ENCRYPT).unwrap_err(), CryptError::AppId);
        assert_eq!(c.decrypt("not base64!").unwrap_err(), CryptError::Base64);
        assert_eq!(c.decrypt("AAAA").unwrap_err(), CryptError::Malformed);
        // Whole blocks whose last byte is 0 or 33: not WeChat's padding.
        for pad in [0u8, 33] {
            let mut block = [pad; 32];
            let encryptor = Encryptor::new(&c.key.into(), c.key[..16].into());
            let cipher = encryptor.encrypt_padded_mut::<NoPadding>(&mut block, 32).unwrap().to_vec();
            assert_eq!(c.decrypt(&STANDARD.encode(cipher)).unwrap_err(), CryptError::Malformed, "pad {pad}");
        }
        assert!(!format!("{c:?}").contains("AAAAA"), "the token stays out of Debug output");
    }
}
