use super::*;

fn env<'a>(vars: &'a [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
}

const LAMBDA: [(&str, &str); 4] = [
    ("AWS_REGION", "eu-west-1"),
    ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001"),
    ("AWS_SECRET_ACCESS_KEY", "secret-access-key-value"),
    ("AWS_SESSION_TOKEN", "session-token-value"),
];

fn store(extra: &[(&'static str, &'static str)]) -> Result<DynamoStore, StoreFailure> {
    let mut vars = LAMBDA.to_vec();
    vars.extend_from_slice(extra);
    DynamoStore::new("wx-tokens", env(&vars))
}

#[test]
fn the_endpoint_region_and_credentials_come_from_the_environment_as_the_sdks_read_them() {
    let s = store(&[]).unwrap();
    assert_eq!(
        (s.api.endpoint.as_str(), s.api.host.as_str()),
        ("https://dynamodb.eu-west-1.amazonaws.com/", "dynamodb.eu-west-1.amazonaws.com")
    );
    let cn = DynamoStore::new("t12", env(&[("AWS_DEFAULT_REGION", "cn-north-1"), LAMBDA[1], LAMBDA[2]])).unwrap();
    assert_eq!(cn.api.host, "dynamodb.cn-north-1.amazonaws.com.cn");
    assert!(cn.api.signer.credentials.session_token.is_none());
    let local = store(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")]).unwrap();
    assert_eq!(local.api.host, "127.0.0.1:4566");
    let both =
        store(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:1"), ("AWS_ENDPOINT_URL_DYNAMODB", "http://localhost:2/")]);
    assert_eq!(both.unwrap().api.host, "localhost:2", "the service's own variable wins");

    let failure = |vars: &[(&'static str, &'static str)]| DynamoStore::new("t12", env(vars)).err().unwrap().0;
    assert!(failure(&LAMBDA[1..]).contains("AWS_REGION (or AWS_DEFAULT_REGION)"));
    assert!(failure(&[LAMBDA[0], LAMBDA[2]]).contains("AWS_ACCESS_KEY_ID"));
    assert!(failure(&[LAMBDA[0], LAMBDA[1], ("AWS_SECRET_ACCESS_KEY", " ")]).contains("AWS_SECRET_ACCESS_KEY"));
    let bad = store(&[("AWS_ENDPOINT_URL_DYNAMODB", "http://user:pw@host/path?q")]).err().unwrap().0;
    assert!(bad.contains("AWS_ENDPOINT_URL_DYNAMODB must be an http(s) URL") && !bad.contains("pw"), "{bad}");
}

#[test]
fn token_items_carry_the_token_its_expiry_and_a_ttl_at_the_refresh_point() {
    let body = request::save("t", "wx:token:stable:wxa", "tok", 7_200_500, 6_900_500);
    assert_eq!(
        body,
        json!({"TableName":"t","Item":{"pk":{"S":"wx:token:stable:wxa"},"v":{"S":"tok"},
               "exp_ms":{"N":"7200500"},"ttl":{"N":"6901"}}})
    );
    assert_eq!(request::get("t", "k"), json!({"TableName":"t","Key":{"pk":{"S":"k"}},"ConsistentRead":true}));
    let remove = request::remove_if("t", "k", "tok", 1_000);
    assert_eq!(remove["ConditionExpression"], "v = :v AND exp_ms > :live");
    assert_eq!(remove["ExpressionAttributeValues"], json!({":v":{"S":"tok"},":live":{"N":"301000"}}));
}

#[test]
fn a_stored_token_counts_only_until_it_is_due_for_refresh() {
    let item = json!({"pk":{"S":"k"},"v":{"S":"tok"},"exp_ms":{"N":"1000000"},"ttl":{"N":"700"}});
    let due = 1_000_000 - REFRESH_MARGIN.as_millis() as u64;
    let token = live_token(&item, due - 1).unwrap();
    assert_eq!((token.value.expose_secret(), token.expires_at_ms), ("tok", 1_000_000));
    assert!(live_token(&item, due).is_none(), "due: absent, though DynamoDB has not deleted it yet");
    let short_ttl = json!({"v":{"S":"tok"},"exp_ms":{"N":"1000000"},"ttl":{"N":"600"}});
    assert!(live_token(&short_ttl, 600_000).is_none(), "past its ttl");
    assert!(live_token(&json!({"v":{"S":"tok"}}), 0).is_none(), "not a token item");
}

#[test]
fn leases_durable_values_and_scans_are_conditional_writes_and_consistent_reads() {
    let lock = request::lock("t", "k", "h1", 5_000, 35_000);
    assert_eq!(
        lock["Item"],
        json!({"pk":{"S":"k:lock"},"holder":{"S":"h1"},"until_ms":{"N":"35000"},"ttl":{"N":"35"}})
    );
    assert_eq!(lock["ConditionExpression"], "attribute_not_exists(pk) OR until_ms <= :now");
    assert_eq!(lock["ExpressionAttributeValues"], json!({":now":{"N":"5000"}}));
    let unlock = request::unlock("t", "k", "h1");
    assert_eq!(
        (&unlock["Key"], &unlock["ConditionExpression"]),
        (&json!({"pk":{"S":"k:lock"}}), &json!("holder = :h"))
    );

    let create = request::swap("t", "k", None, "v1");
    assert_eq!(
        create,
        json!({"TableName":"t","Item":{"pk":{"S":"k"},"v":{"S":"v1"}},"ConditionExpression":"attribute_not_exists(pk)"})
    );
    let replace = request::swap("t", "k", Some("v1"), "v2");
    assert_eq!(replace["ConditionExpression"], "v = :e");
    assert_eq!(replace["ExpressionAttributeValues"], json!({":e":{"S":"v1"}}));
    assert!(replace["Item"].get("ttl").is_none(), "durable values never expire");
    assert_eq!(request::delete_if("t", "k", "v2")["ConditionExpression"], "v = :e");

    let first = request::scan("t", "wx:platform:c:refresh:", None);
    assert_eq!(
        first,
        json!({"TableName":"t","ConsistentRead":true,"ProjectionExpression":"pk",
               "FilterExpression":"begins_with(pk, :p)","ExpressionAttributeValues":{":p":{"S":"wx:platform:c:refresh:"}}})
    );
    let next = json!({"pk":{"S":"wx:platform:c:refresh:wxb"}});
    assert_eq!(request::scan("t", "p", Some(&next))["ExclusiveStartKey"], next);
    let page = json!({"Items":[{"pk":{"S":"a"}},{"pk":{"S":"b"}}],"LastEvaluatedKey":next});
    let (items, more) = scan_items(&page);
    let keys: Vec<&str> = items.iter().filter_map(|item| s_of(item, "pk")).collect();
    assert_eq!((keys, more), (vec!["a", "b"], Some(next)));
    assert_eq!(scan_items(&json!({"Items":[],"Count":0})), (&[][..], None));
    let batch = request::batch_get("t", &["a".to_owned(), "b".to_owned()]);
    assert_eq!(batch["RequestItems"]["t"]["Keys"], json!([{"pk":{"S":"a"}},{"pk":{"S":"b"}}]));
    assert_eq!(batch["RequestItems"]["t"]["ProjectionExpression"], "pk, v, #ttl");
    assert_eq!(batch["RequestItems"]["t"]["ConsistentRead"], true);
}

#[test]
fn error_answers_name_aws_type_and_message_and_never_a_credential() {
    let s = store(&[]).unwrap();
    let status = reqwest::StatusCode::BAD_REQUEST;
    let refusal = |answer: Value| s.api.refusal(status, Some(&answer));
    let condition = json!({"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"});
    assert!(matches!(refusal(condition), Refusal::ConditionFailed));
    let throttled = json!({"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."});
    assert_eq!(
        refusal(throttled).describe("DynamoDB", "GetItem"),
        "DynamoDB GetItem: ThrottlingException (HTTP 400): Rate of requests exceeds the allowed throughput."
    );
    let signature = json!({"__type":"com.amazon.coral.service#InvalidSignatureException",
        "message":"The request signature we calculated does not match the signature you provided. The Canonical String for this request should have been 'POST\n/\n\nx-amz-security-token:session-token-value\n'"});
    let failure = refusal(signature).describe("DynamoDB", "PutItem");
    assert!(failure.starts_with("DynamoDB PutItem: InvalidSignatureException (HTTP 400): The request signature"));
    let echoed = json!({"__type":"com.amazon.coral.service#UnrecognizedClientException",
        "message":"The security token session-token-value of ASIAEXAMPLEKEYID0001 is invalid; secret-access-key-value"});
    let failure = refusal(echoed).describe("DynamoDB", "Scan");
    for value in ["session-token-value", "ASIAEXAMPLEKEYID0001", "secret-access-key-value"] {
        assert!(!failure.contains(value), "{failure}");
    }
    let unavailable = s.api.refusal(reqwest::StatusCode::SERVICE_UNAVAILABLE, None).describe("DynamoDB", "GetItem");
    assert_eq!(unavailable, "DynamoDB GetItem: HTTP 503");
}
