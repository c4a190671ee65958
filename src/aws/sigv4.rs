//! AWS Signature Version 4 for the function's AWS calls (DynamoDB's and SQS's JSON APIs), written here on `ring`
//! (HMAC-SHA256, SHA-256).
//!
//! Why not the `aws-sigv4` crate: it brings the smithy runtime crates (`aws-smithy-types`, `aws-smithy-runtime-api`,
//! `aws-credential-types`, `time`, …) into the Lambda artefact for what is, for two services and one request shape
//! (`POST /` with a JSON body), forty lines over the HMAC and SHA-256 that `ring` already gives the artefact (rustls
//! and API security use it). The signer is proved against `aws-sigv4` itself: the unit test below signs the same
//! requests with both and compares the headers; `aws-sigv4` is a dev-dependency only.
//!
//! What is signed: the method, path `/`, no query, the headers `content-type`, `host`, `x-amz-date`,
//! `x-amz-security-token` (when there is a session token, as Lambda's credentials have) and `x-amz-target`, and the
//! body's SHA-256. The secret key and the session token never leave this module but as the signature and the token
//! header.

use std::time::SystemTime;

use ring::{digest, hmac};
use secrecy::{ExposeSecret, SecretString};

/// The credentials requests are signed with, as Lambda gives them (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`).
pub(crate) struct Credentials {
    pub access_key_id: SecretString,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

impl Credentials {
    /// Every credential value, to be cut out of anything a server sends back.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        [Some(&self.access_key_id), Some(&self.secret_access_key), self.session_token.as_ref()]
            .into_iter()
            .flatten()
            .map(|s| s.expose_secret())
            .filter(|s| !s.is_empty())
    }
}

/// Signs requests for one service in one region.
pub(crate) struct Signer {
    pub credentials: Credentials,
    pub region: String,
    pub service: &'static str,
}

impl Signer {
    /// The headers that make `POST /` to `host` with `headers` (lower-case names; `content-type`, `x-amz-target`)
    /// and `body` a signed request at `time`: `x-amz-date`, `x-amz-security-token` (if any) and `authorization`.
    pub fn sign(
        &self,
        host: &str,
        headers: &[(&'static str, &str)],
        body: &[u8],
        time: SystemTime,
    ) -> Vec<(&'static str, String)> {
        let amz_date = amz_date(time);
        let date = &amz_date[..8];
        let mut signed: Vec<(&str, &str)> = headers.to_vec();
        signed.push(("host", host));
        signed.push(("x-amz-date", &amz_date));
        if let Some(token) = &self.credentials.session_token {
            signed.push(("x-amz-security-token", token.expose_secret()));
        }
        signed.sort_by(|a, b| a.0.cmp(b.0));
        let names: Vec<&str> = signed.iter().map(|(name, _)| *name).collect();
        let names = names.join(";");
        let canonical = canonical_request(&signed, &names, body);

        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
        );
        let secret = format!("AWS4{}", self.credentials.secret_access_key.expose_secret());
        let key = [date, self.region.as_str(), self.service, "aws4_request"]
            .into_iter()
            .fold(secret.into_bytes(), |key, part| mac(&key, part.as_bytes()));
        let signature = hex(&mac(&key, to_sign.as_bytes()));
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={names}, Signature={signature}",
            self.credentials.access_key_id.expose_secret()
        );

        let mut added = vec![("x-amz-date", amz_date.clone())];
        if let Some(token) = &self.credentials.session_token {
            added.push(("x-amz-security-token", token.expose_secret().to_owned()));
        }
        added.push(("authorization", authorization));
        added
    }
}

/// The canonical request of `POST /` with these headers (sorted by name) and body.
fn canonical_request(signed: &[(&str, &str)], names: &str, body: &[u8]) -> String {
    let mut canonical = String::from("POST\n/\n\n");
    for (name, value) in signed {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value.trim());
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(names);
    canonical.push('\n');
    canonical.push_str(&hex(digest::digest(&digest::SHA256, body).as_ref()));
    canonical
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `20150830T123600Z`: the time in UTC, to the second, in ISO 8601's basic format.
fn amz_date(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string().replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn signer(session_token: Option<&str>, region: &str) -> Signer {
        Signer {
            credentials: Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                session_token: session_token.map(SecretString::from),
            },
            region: region.to_owned(),
            service: "dynamodb",
        }
    }

    /// What the official signer adds to the same request.
    fn reference(
        signer: &Signer,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        time: SystemTime,
    ) -> Vec<(String, String)> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let c = &signer.credentials;
        let identity = aws_credential_types::Credentials::new(
            c.access_key_id.expose_secret(),
            c.secret_access_key.expose_secret(),
            c.session_token.as_ref().map(|t| t.expose_secret().to_owned()),
            None,
            "test",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&signer.region)
            .name(signer.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let request = SignableRequest::new("POST", url, headers.iter().copied(), SignableBody::Bytes(body)).unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let mut added: Vec<(String, String)> =
            instructions.headers().map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned())).collect();
        added.sort();
        added
    }

    #[test]
    fn the_signature_is_the_one_the_official_aws_sigv4_crate_makes() {
        let times = [UNIX_EPOCH + Duration::from_secs(1_440_938_160), UNIX_EPOCH + Duration::from_secs(1_795_000_000)];
        // The session token, the region, the URL and its Host header, the body.
        type Case<'a> = (Option<&'a str>, &'a str, &'a str, &'a str, &'a [u8]);
        let cases: [Case; 4] = [
            (None, "us-east-1", "https://dynamodb.us-east-1.amazonaws.com", "dynamodb.us-east-1.amazonaws.com", b"{}"),
            (
                Some("IQoJb3JpZ2luX2VjEXAMPLE/session+token=="),
                "cn-north-1",
                "https://dynamodb.cn-north-1.amazonaws.com.cn/",
                "dynamodb.cn-north-1.amazonaws.com.cn",
                br#"{"TableName":"wx-tokens","Key":{"pk":{"S":"wx:token:stable:wx0123"}},"ConsistentRead":true}"#,
            ),
            (Some("token"), "eu-west-1", "http://127.0.0.1:8000", "127.0.0.1:8000", b""),
            (None, "ap-east-1", "http://localhost:4567/", "localhost:4567", "{\"v\":\"é\"}".as_bytes()),
        ];
        for time in times {
            for (token, region, url, host, body) in cases {
                let signer = signer(token, region);
                let headers =
                    [("content-type", "application/x-amz-json-1.0"), ("x-amz-target", "DynamoDB_20120810.GetItem")];
                let mut ours: Vec<(String, String)> =
                    signer.sign(host, &headers, body, time).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                ours.sort();
                assert_eq!(ours, reference(&signer, url, &headers, body, time), "{url} at {time:?}");
            }
        }
    }

    #[test]
    fn the_aws_documentation_example_key_and_date_sign_as_documented() {
        // The date format and the credential scope of AWS's own example (20150830T123600Z, us-east-1).
        let time = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(time), "20150830T123600Z");
        let added = signer(None, "us-east-1").sign("example.amazonaws.com", &[], b"", time);
        let auth = &added.iter().find(|(k, _)| *k == "authorization").unwrap().1;
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/dynamodb/aws4_request, "));
        assert!(auth.contains("SignedHeaders=host;x-amz-date, Signature="), "{auth}");
        assert!(!auth.contains("wJalrXUtnFEMI"), "the secret key is never sent");
    }
}
