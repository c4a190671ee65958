//! Known answers: WeChat's own worked example of API security (服务端 API 签名加密指南 §3.1.2, §3.2.2, §4.1.2,
//! §4.2.1), as ../shared/spec/api-security.md §9 gives it. The key files under fixtures/api-security/ are that
//! guide's public example key and certificate, not secrets.
//!
//! Moved from the function's `tests/api_security_vectors.rs` with the envelope into the wire crate; names unchanged.

use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::SubjectPublicKeyInfoDer;
use wechat_wire::envelope::{additional_data, signed_bytes, Envelope, PlatformCert, Signer, SymKey};

const APPID: &str = "wxba6223c06417af7b";
const URLPATH: &str = "https://api.weixin.qq.com/wxa/getuserriskrank";
const SYM_KEY: &str = "otUpngOjU+nVQaWJIC3D/yMLV17RKaP6t4Ot9tbnzLY=";
const SYM_SN: &str = "fa05fe1e5bcc79b81ad5ad4b58acf787";
const KEY_SN: &str = "97845f6ed842ea860df6fdf65941ff56";

const REQUEST_TIMESTAMP: u64 = 1635927954;
const REQUEST_IV: &str = "fmW/zNxXlytUZBgj";
const REQUEST_PLAINTEXT: &str = r#"{"_n":"o89QaPVsRu1yppIZzvSZc4","_appid":"wxba6223c06417af7b","_timestamp":1635927954,"appid":"wxba6223c06417af7b","openid":"oEWzBfmdLqhFS2mTXCo2E4Y9gJAM","scene":0,"client_ip":"127.0.0.1"}"#;
const REQUEST_DATA: &str = "0IDVdrPtSPF/Oe2CTXCV2vVNPbVJdJlP2WaTMQnoYLh5iCrrSNfQFh25EnStDMf0hLlVNBCZQtf9NaV0m4aRA4AAYIO7oR/Ge+4yY4EmZp5EVPB42xjScgMx5X3D4VdLCfynXIUKUtZHZvk1zmLVE3RauzJgiM1BB1CPmwcENo3MTJ0z8Vfkf5tMv54kOXobDLlV5rfqKdAX7gM/rP82DgZdt9vvZX44ipdbHIjJvw83ZXAFtvftdVw2Qd8=";
const REQUEST_AUTHTAG: &str = "5qeM/2vZv+6KtScN94IpMg==";
const REQUEST_SIGNATURE: &str = "wcSSWHZunjz9VKl9q+If9deiyECXDAELfAJNZ4+5T+NhFr8zfhkwdQtlgQ7nN5xs99R57La9UjBTRBGge2KYyshWtw7HIMPAqWNsnpHvx0b2f7s6Bt7OpfOQLlIfNgepgTVmUwrqW8/7A12szj7tCe/bRFilwnaX6N0w4duHlfL7ic7IIZXouvy9dLRAa5GtEk1eD/LPWRiKh0SvJ3znPY/pSiQW9zSkXVdj9UGGM8qcKLzPGJ7gSmt3ZOPkFapk9wqFmhJwQj//xN5+hUlr2UiNPMNSHve5Y2ADLsNHqk5t7RfAZ8nW9/8lzhVt4t+toy1FeehxCGIC8qgmjIl1hg==";

const RESPONSE_TIMESTAMP: u64 = 1635927956;
const RESPONSE_BODY: &str = r#"{"iv":"r2WDQt56rEAmMuoR","data":"HExs66Ik3el+iM4IpeQ7SMEN934FRLFYOd3EmeaIrpP4EPTHckoco6O+PaoRZRa3lqaPRZT7r52f7LUok6gLxc6cdR8C4vpIIfh4xfLC4L7FNy9GbuMK1hcoi8b7gkWJcwZMkuCFNEDmqn3T49oWzAQOrY4LZnnnykv6oUJotdAsnKvmoJkLK7hRh7M2B1d2UnTnRuoIyarXc5Iojwoghx4BOvnV","authtag":"z2BFD8QctKXTuBlhICGOjQ=="}"#;
const RESPONSE_SIGNATURE: &str = "Ht0VfQkkEweJ4hU266C14Aj64H9AXfkwNi5zxUZETCvR2svU1ZYdosDhFX/voLj1TyszqKsVxAlENGt7PPZZ8RQX7jnA4SKhiPUhW4LTbyTenisHJ+ohSfDjYnXavjQsBHspFS+BlPHuSSJ2xyQzw1+HuC6nid09ZL4FnGSYo4OI5MJrSb9xLzIVZMIDuUQchGKi/KaB1KzxECLEZcfjqbAgmxC7qOmuBLyO1WkHYDM95NJrHJWba5xv4wrwPru9yYTJSNRnlM+zrW5w9pOubC4Jtj3szTAEuOz9AcqUmgaAvMLNAIa8hfODLRe3n/cu4SgYlN/ZkNRU4QXVNbPGMg==";
const RESPONSE_SIGNATURE_DEPRECATED: &str = "ZP1OODikAOePc+YJUMLxunF6xV05kextO/T1fy5lWv/CwV6OCsPBRM2xRRCi+B4lYXbbfYDdjzCz5BIAWEwIdjMlg/IHcJVHhRNAlKt5A3zvzfaJa5IJQel7xuUEXk/B6KVyEb41PbzrptjUGqWyTFMrjxQ4ThJfCuYocnUng7OuDU95enMqK2hZpO8o7kFW638BAwKDSiFNEwEJDWYkLz0kEw7ma3keezm4YHYKfJmjChK39tmZld7Rw/yrV1U9RiL/DO5ayP9VmrQkT/vYrPKyqI4/xKrIaTq44jFYTPIJKdU2OnLt6kjqwp2hvCzMuJdjRcrvzhWJ2A8xZ5hI2w==";
const RESPONSE_PLAINTEXT: &str = r#"{"_n":"ShYZpqdVgY+yQVAxNSWhYg","_appid":"wxba6223c06417af7b","_timestamp":1635927956,"errcode":0,"errmsg":"getuserriskrank succ","risk_rank":0,"unoin_id":2258658297}"#;

const APP_PRIVATE_KEY: &str = include_str!("fixtures/api-security/official-example-app-private-key.pem");
const APP_PUBLIC_KEY: &str = include_str!("fixtures/api-security/official-example-app-public-key.pem");
const PLATFORM_CERT: &str = include_str!("fixtures/api-security/official-example-platform-cert.pem");

fn request_body() -> String {
    format!(r#"{{"iv":"{REQUEST_IV}","data":"{REQUEST_DATA}","authtag":"{REQUEST_AUTHTAG}"}}"#)
}

/// Whether `signature` verifies with the official example's public key, read from its own PEM (not derived by us).
fn verifies_with_app_public_key(message: &[u8], signature: &str) -> bool {
    use base64::Engine;
    let spki = SubjectPublicKeyInfoDer::from_pem_slice(APP_PUBLIC_KEY.as_bytes()).unwrap();
    let key = webpki::RawPublicKeyEntity::try_from(&spki).unwrap();
    let signature = base64::engine::general_purpose::STANDARD.decode(signature).unwrap();
    key.verify_signature(webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY, message, &signature).is_ok()
}

#[test]
fn the_request_encrypts_byte_for_byte_with_the_official_iv() {
    use base64::Engine;
    let key = SymKey::from_base64(SYM_KEY).unwrap();
    let aad = additional_data(URLPATH, APPID, REQUEST_TIMESTAMP, SYM_SN);
    assert_eq!(aad, format!("{URLPATH}|{APPID}|1635927954|{SYM_SN}"));
    let iv: [u8; 12] = base64::engine::general_purpose::STANDARD.decode(REQUEST_IV).unwrap().try_into().unwrap();
    let envelope = key.seal(iv, aad.as_bytes(), REQUEST_PLAINTEXT.as_bytes());
    assert_eq!(envelope.data, REQUEST_DATA);
    assert_eq!(envelope.authtag, REQUEST_AUTHTAG);
    let body = serde_json::to_string(&envelope).unwrap();
    assert_eq!(body, request_body());
    assert_eq!(body.len(), 324);
    // And back: the official envelope opens to the exact plaintext.
    assert_eq!(key.open(&envelope, aad.as_bytes()).unwrap(), REQUEST_PLAINTEXT.as_bytes());
}

#[test]
fn the_official_request_signature_verifies_with_the_derived_public_key() {
    let message = signed_bytes(URLPATH, APPID, REQUEST_TIMESTAMP, request_body().as_bytes());
    assert!(verifies_with_app_public_key(&message, REQUEST_SIGNATURE));
    // The console's PKCS#1 download is read as it is, and its public half is the published one.
    assert!(Signer::from_pem(APP_PRIVATE_KEY).unwrap().verifies(&message, REQUEST_SIGNATURE));
}

#[test]
fn the_official_response_signature_verifies_with_the_official_certificate_and_decrypts_exactly() {
    let cert = PlatformCert::from_pem(PLATFORM_CERT).unwrap();
    let message = signed_bytes(URLPATH, APPID, RESPONSE_TIMESTAMP, RESPONSE_BODY.as_bytes());
    assert_eq!(RESPONSE_BODY.len(), 292);
    assert!(cert.verifies(&message, RESPONSE_SIGNATURE));
    // The deprecated signature is the expiring certificate's, which is not published: it must not verify here.
    assert!(!cert.verifies(&message, RESPONSE_SIGNATURE_DEPRECATED));

    let envelope: Envelope = serde_json::from_str(RESPONSE_BODY).unwrap();
    let key = SymKey::from_base64(SYM_KEY).unwrap();
    // The response's own timestamp goes into the additional data, not the request's.
    let aad = additional_data(URLPATH, APPID, RESPONSE_TIMESTAMP, SYM_SN);
    assert_eq!(key.open(&envelope, aad.as_bytes()).unwrap(), RESPONSE_PLAINTEXT.as_bytes());
    let with_request_time = additional_data(URLPATH, APPID, REQUEST_TIMESTAMP, SYM_SN);
    assert!(key.open(&envelope, with_request_time.as_bytes()).is_err());
}

#[test]
fn wrong_signed_strings_and_pkcs1_v15_do_not_verify() {
    let body = request_body();
    let five_fields = format!("{URLPATH}\n{APPID}\n{REQUEST_TIMESTAMP}\n{KEY_SN}\n{body}");
    let sn_before_time = format!("{URLPATH}\n{APPID}\n{KEY_SN}\n{REQUEST_TIMESTAMP}\n{body}");
    let path_only = signed_bytes("/wxa/getuserriskrank", APPID, REQUEST_TIMESTAMP, body.as_bytes());
    for message in [five_fields.as_bytes(), sn_before_time.as_bytes(), &path_only] {
        assert!(!verifies_with_app_public_key(message, REQUEST_SIGNATURE));
    }
    // The official signature is PSS: read as PKCS#1 v1.5 it does not verify.
    use base64::Engine;
    let spki = SubjectPublicKeyInfoDer::from_pem_slice(APP_PUBLIC_KEY.as_bytes()).unwrap();
    let key = webpki::RawPublicKeyEntity::try_from(&spki).unwrap();
    let message = signed_bytes(URLPATH, APPID, REQUEST_TIMESTAMP, body.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.decode(REQUEST_SIGNATURE).unwrap();
    assert!(key.verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, &message, &signature).is_err());
}

#[test]
fn our_signatures_are_pss_with_salt_32_and_verify_with_the_published_key() {
    use base64::Engine;
    let signer = Signer::from_pem(APP_PRIVATE_KEY).unwrap();
    let message = signed_bytes(URLPATH, APPID, REQUEST_TIMESTAMP, request_body().as_bytes());
    let first = signer.sign(&message).unwrap();
    let second = signer.sign(&message).unwrap();
    assert_ne!(first, second, "PSS is randomised");
    assert!(verifies_with_app_public_key(&message, &first));
    assert!(verifies_with_app_public_key(&message, &second));
    assert!(!verifies_with_app_public_key(b"another message", &first));
    // Not PKCS#1 v1.5.
    let pair = ring::signature::RsaKeyPair::from_der(
        rustls_pki_types::PrivatePkcs1KeyDer::from_pem_slice(APP_PRIVATE_KEY.as_bytes()).unwrap().secret_pkcs1_der(),
    )
    .unwrap();
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public().as_ref().to_vec());
    let signature = base64::engine::general_purpose::STANDARD.decode(&first).unwrap();
    assert!(public.verify(&message, &signature).is_err());
}
