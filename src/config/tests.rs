use super::*;
use secrecy::ExposeSecret;

fn config(vars: &[(&str, &str)]) -> Result<Config, Error> {
    Config::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
}

fn config_error(vars: &[(&str, &str)]) -> String {
    match config(vars) {
        Err(Error::Config(why)) => why,
        other => panic!("expected a ConfigError, got {other:?}"),
    }
}

#[test]
fn defaults_apply_when_only_credentials_are_set() {
    let c = config(&[("WX_APPID", "wxa"), ("WX_SECRET", "s")]).unwrap();
    assert_eq!(c.api_base, DEFAULT_API_BASE);
    assert_eq!(c.token_endpoint, TokenEndpoint::Stable);
    assert!(matches!(c.token_cache, TokenCache::Memory));
    assert!(
        matches!(c.credentials, Credentials::App { ref appid, ref secret } if appid == "wxa" && secret.expose_secret() == "s")
    );
}

#[test]
fn every_variable_is_read_and_checked() {
    let c =
        config(&[("WX_ACCESS_TOKEN", "t"), ("WX_API_BASE", "http://127.0.0.1:9/"), ("WX_TOKEN_ENDPOINT", "classic")])
            .unwrap();
    assert_eq!(c.api_base, "http://127.0.0.1:9");
    assert_eq!(c.token_endpoint, TokenEndpoint::Classic);
    assert!(matches!(c.credentials, Credentials::Fixed { .. }));
    assert!(config_error(&[]).contains("WX_APPID and WX_SECRET are not set"));
    assert!(config_error(&[("WX_APPID", "wxa")]).contains("WX_SECRET is not set"));
    assert!(config_error(&[("WX_SECRET", "s")]).contains("WX_APPID is not set"));
    assert!(config_error(&[("WX_APPID", "a"), ("WX_SECRET", " ")]).contains("WX_SECRET is not set"));
    // WX_APPID beside a fixed token is allowed (API security signs with it); a secret beside it is not.
    let fixed = config(&[("WX_ACCESS_TOKEN", "t"), ("WX_APPID", "wxa")]).unwrap();
    assert!(matches!(fixed.credentials, Credentials::Fixed { appid: Some(ref a), .. } if a == "wxa"));
    assert!(config_error(&[("WX_ACCESS_TOKEN", "t"), ("WX_SECRET", "s")]).contains("not both"));
    let both = config_error(&[("WX_APPID", "a"), ("WX_SECRET", "s"), ("WX_SECRET_ARN", "arn:x")]);
    assert!(both.contains("set only one of") && both.contains("WX_SECRET and WX_SECRET_ARN"), "{both}");
    assert!(config_error(&[("WX_SECRET_PARAMETER", "/wx/secret")]).contains("to go with WX_SECRET_PARAMETER"));
    let stored = config(&[("WX_APPID", "a"), ("WX_SECRET_PARAMETER", "/wx/secret")]).unwrap();
    assert!(
        matches!(stored.credentials, Credentials::Stored { secret: StoredSecret::Parameter { ref name, .. }, .. } if name == "/wx/secret")
    );
    let creds = [("WX_APPID", "a"), ("WX_SECRET", "s")];
    let with = |k, v| config_error(&[creds[0], creds[1], (k, v)]);
    assert!(with("WX_TOKEN_ENDPOINT", "fast").contains("stable or classic"));
    assert!(with("WX_METRICS", "yes").contains("on or off"));
    assert!(!config(&[creds[0], creds[1], ("WX_METRICS", "off")]).unwrap().metrics);
    assert!(with("WX_API_BASE", "ftp://x").contains("http(s)"));
    assert!(with("WX_API_BASE", "not a url").contains("not a URL"));
    let disk = with("WX_TOKEN_CACHE", "disk");
    assert!(disk.contains("memory, a redis:// (or rediss://) URL, or dynamodb://<table>"), "{disk}");
    let redis = config(&[creds[0], creds[1], ("WX_TOKEN_CACHE", "rediss://:pa55word@cache:6379")]).unwrap();
    assert!(matches!(redis.token_cache, TokenCache::Redis(_)));
    assert!(!format!("{redis:?}").contains("pa55word"));
    assert!(with("GATEWAY_API_KEY", "short").contains("at least 16"));
    assert!(with("GATEWAY_API_KEY", "a key with spaces in it").contains("without spaces"));
    let c = config(&[creds[0], creds[1], ("GATEWAY_API_KEY", "0123456789abcdef")]).unwrap();
    assert!(c.gateway_key.is_some());
    assert!(!format!("{c:?}").contains("0123456789abcdef"));
}

#[test]
fn a_dynamodb_token_cache_names_a_valid_table() {
    let creds = [("WX_APPID", "a"), ("WX_SECRET", "s")];
    let cache =
        |v: &str| config(&[("WX_APPID", "a"), ("WX_SECRET", "s"), ("WX_TOKEN_CACHE", v)]).map(|c| c.token_cache);
    for table in ["wx-tokens", "abc", "My_Table.v2-prod", &"t".repeat(255)] {
        let url = format!("dynamodb://{table}");
        assert!(matches!(cache(&url), Ok(TokenCache::DynamoDb { table: ref t }) if t == table), "{url}");
    }
    for table in ["", "ab", "wx tokens", "wx/tokens", "table:1", "tablé", &"t".repeat(256)] {
        let why = match cache(&format!("dynamodb://{table}")) {
            Err(Error::Config(why)) => why,
            other => panic!("dynamodb://{table} accepted: {other:?}"),
        };
        assert!(why.contains("3 to 255 letters, digits, _ . or -") && why.contains("memory, a redis://"), "{why}");
    }
    let why = config_error(&[creds[0], creds[1], ("WX_TOKEN_CACHE", "dynamo://wx-tokens")]);
    assert!(why.contains("dynamodb://<table>"), "{why}");
}

#[test]
fn platform_settings_come_all_together_and_alone() {
    let platform = [
        ("WX_COMPONENT_APPID", "wxcomponent0000001"),
        ("WX_COMPONENT_SECRET", "component-secret-value"),
        ("WX_COMPONENT_TOKEN", "push-token-value"),
        ("WX_COMPONENT_AES_KEY", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
    ];
    let c = config(&platform).unwrap();
    let Credentials::Platform(p) = &c.credentials else { panic!("not platform mode: {c:?}") };
    assert_eq!(p.appid, "wxcomponent0000001");
    assert!(matches!(p.secret, Secret::Given(_)) && p.previous_aes_key.is_none());
    for hidden in ["component-secret-value", "push-token-value", "ABCDEFG"] {
        assert!(!format!("{c:?}").contains(hidden), "{hidden} shows");
    }
    let missing = config_error(&platform[..2]);
    assert!(missing.contains("WX_COMPONENT_TOKEN, WX_COMPONENT_AES_KEY too"), "{missing}");
    let with = |extra: (&str, &str)| {
        let mut vars = platform.to_vec();
        vars.push(extra);
        config(&vars)
    };
    let mixed = with(("WX_APPID", "wxa")).unwrap_err().to_string();
    assert!(mixed.contains("leave WX_APPID, WX_SECRET* and WX_ACCESS_TOKEN unset"), "{mixed}");
    let short_key = with(("WX_COMPONENT_AES_KEY_PREVIOUS", "short")).unwrap_err().to_string();
    assert!(short_key.contains("WX_COMPONENT_AES_KEY_PREVIOUS must be the console's EncodingAESKey"), "{short_key}");
    let two = with(("WX_COMPONENT_SECRET_ARN", "arn:aws:secretsmanager:x")).unwrap_err().to_string();
    assert!(two.contains("set only one of WX_COMPONENT_SECRET, WX_COMPONENT_SECRET_ARN"), "{two}");
    let mut stored = platform.to_vec();
    stored[1] = ("WX_COMPONENT_SECRET_PARAMETER", "/wx/component");
    let Credentials::Platform(p) = config(&stored).unwrap().credentials else { panic!() };
    assert!(matches!(p.secret, Secret::Stored(ref s) if s.variable() == "WX_COMPONENT_SECRET_PARAMETER"));
    let mut bad_appid = platform.to_vec();
    bad_appid[0] = ("WX_COMPONENT_APPID", "wx component");
    assert!(config(&bad_appid).unwrap_err().to_string().contains("WX_COMPONENT_APPID is not an appid"));
}

#[test]
fn the_secret_never_shows_in_debug_output() {
    let c = config(&[("WX_APPID", "wxa"), ("WX_SECRET", "hunter2-secret")]).unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn rollout_settings_default_and_are_each_checked_here() {
    let creds = [("WX_APPID", "a"), ("WX_SECRET", "s")];
    let rollouts = config(&creds).unwrap().rollouts;
    let defaults = RolloutSettings { queue_url: None, max_receives: 5, batch_concurrency: 4, keep_days: 30 };
    assert_eq!(rollouts, defaults);
    let with = |k, v| config_error(&[creds[0], creds[1], (k, v)]);
    for url in ["sqs.eu-west-1.amazonaws.com/1/q", "ftp://host/q", "http://exa mple/q"] {
        assert!(with("WX_ROLLOUT_QUEUE_URL", url).contains("WX_ROLLOUT_QUEUE_URL must be the queue's http(s) URL"));
    }
    assert!(with("WX_ROLLOUT_MAX_RECEIVES", "0").contains("WX_ROLLOUT_MAX_RECEIVES must be a whole number from 1"));
    assert!(with("WX_ROLLOUT_BATCH_CONCURRENCY", "11").contains("from 1 to 10"));
    assert!(with("WX_ROLLOUT_TTL_DAYS", "a month").contains("from 1 to 365"));
}
