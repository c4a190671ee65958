use super::*;

fn key() -> SecretString {
    "k3y-for-tests-0123456789".to_owned().into()
}

#[test]
fn the_status_table_covers_every_kind() {
    let wx = |errcode| Error::WxApi { method: "m", errcode, errmsg: String::new() };
    let cases = [
        (wx(89244), 404),
        (wx(89239), 404),
        (wx(89242), 404),
        (wx(89237), 409),
        (wx(89240), 409),
        (wx(89241), 409),
        (wx(89243), 409),
        (wx(89258), 409),
        (wx(89238), 429),
        (wx(45009), 429),
        (wx(45011), 429),
        (wx(89236), 403),
        (wx(89256), 403),
        (wx(89257), 403),
        (wx(48001), 403),
        (wx(47001), 400),
        (wx(-1), 502),
        (wx(40001), 500),
        (wx(99999), 502),
        (Error::InvalidEvent { method: "", detail: String::new() }, 400),
        (Error::Token { method: "", errcode: 40125, errmsg: String::new() }, 500),
        (Error::Upstream { method: "", failure: Failure::Timeout }, 504),
        (Error::Upstream { method: "", failure: Failure::Status(502) }, 502),
        (Error::Upstream { method: "", failure: Failure::InvalidJson(String::new()) }, 502),
        (Error::Config(String::new()), 500),
    ];
    for (error, status) in cases {
        assert_eq!(status_of(&error), status, "{error:?}");
        assert!(status >= 400, "never 2xx for a failure");
    }
}

#[test]
fn a_request_never_shows_its_authorization_header() {
    let event = json!({"requestContext":{"elb":{}},"httpMethod":"POST","headers":{"authorization":"Bearer sekrit-value-0123456789"},"body":"{}"});
    let Inbound::Http(_, Ok(request)) = recognise(event) else { panic!("an ALB request") };
    assert!(!format!("{request:?}").contains("sekrit"));
}

#[test]
fn the_bearer_key_must_match_exactly() {
    let k = key();
    assert!(bearer_matches(Some("Bearer k3y-for-tests-0123456789"), Some(&k)));
    assert!(bearer_matches(Some("bearer k3y-for-tests-0123456789"), Some(&k)));
    assert!(!bearer_matches(Some("Bearer k3y-for-tests-012345678"), Some(&k)));
    assert!(!bearer_matches(Some("Bearer k3y-for-tests-01234567890"), Some(&k)));
    assert!(!bearer_matches(Some("Basic k3y-for-tests-0123456789"), Some(&k)));
    assert!(!bearer_matches(Some("k3y-for-tests-0123456789"), Some(&k)));
    assert!(!bearer_matches(None, Some(&k)));
    assert!(!bearer_matches(Some("Bearer k3y-for-tests-0123456789"), None));
}
