//! `wxpm rollout --function`: Lambda's Invoke API as the real binary speaks it to an HTTP server on loopback that
//! plays Lambda with canned answers: each request signed with the AWS CLI's credentials (checked against the official
//! signer), the report paged through `next`, the function's thrown error shown, and no credential in any output.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use testkit::leaks::assert_clean;
use testkit::temp::TempPath;

use crate::rollout::{stderr, wxpm};

const KEY_ID: &str = "AKIAWXPMTESTKEY00001";
const SECRET: &str = "wxpmTestSecretKey/0123456789+abcdefghijkl";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLEwxpmSessionToken==";

/// A request as the server read it.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn payload(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// An answer: status, extra headers, body.
type Reply = (u16, Vec<(&'static str, String)>, String);

/// One connection per request (`Connection: close`), answered by `answer`; every request kept.
struct FakeLambda {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeLambda {
    fn start(answer: impl Fn(&Seen, usize) -> Reply + Send + 'static) -> FakeLambda {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let Some(request) = read_request(&stream) else { continue };
                let index = {
                    let mut kept = kept.lock().unwrap();
                    kept.push(request.clone());
                    kept.len() - 1
                };
                let (status, headers, body) = answer(&request, index);
                let mut head =
                    format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                let _ = (&stream).write_all(format!("{head}\r\n{body}").as_bytes());
            }
        });
        FakeLambda { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<Seen> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let Some((name, value)) = line.trim_end().split_once(':') else { break };
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length = headers.iter().find(|(k, _)| k == "content-length").map_or(0, |(_, v)| v.parse().unwrap_or(0));
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Seen { path, headers, body })
}

/// A function's answer (200, JSON).
fn ok(answer: Value) -> Reply {
    (200, vec![("content-type", "application/json".into())], answer.to_string())
}

/// The environment a user with keys (and a session) in theirs has.
fn aws_env<'a>(lambda: &'a FakeLambda, token: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL_LAMBDA", &lambda.url),
    ];
    env.extend(token.map(|t| ("AWS_SESSION_TOKEN", t)));
    env
}

/// The request is the one the official signer signs with these credentials, at the time it says.
#[track_caller]
fn assert_signed(seen: &Seen, url: &str, region: &str, token: Option<&str>) {
    let authorization = seen.header("authorization").expect("signed");
    let date = seen.header("x-amz-date").unwrap();
    let scope = format!("Credential={KEY_ID}/{}/{region}/lambda/aws4_request,", &date[..8]);
    assert!(authorization.starts_with("AWS4-HMAC-SHA256 ") && authorization.contains(&scope), "{authorization}");
    assert_eq!(seen.header("x-amz-security-token"), token);
    assert_eq!(seen.path, "/2015-03-31/functions/wx-plugin-manager/invocations");

    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let rfc3339 =
        format!("{}-{}-{}T{}:{}:{}Z", &date[..4], &date[4..6], &date[6..8], &date[9..11], &date[11..13], &date[13..15]);
    let time = humantime::parse_rfc3339(&rfc3339).unwrap();
    assert!(time > UNIX_EPOCH);
    let identity = aws_credential_types::Credentials::new(KEY_ID, SECRET, token.map(str::to_owned), None, "t").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("lambda")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers = [("content-type", seen.header("content-type").unwrap())];
    let request = SignableRequest::new(
        "POST",
        format!("{url}{}", seen.path),
        headers.into_iter(),
        SignableBody::Bytes(&seen.body),
    );
    let (instructions, _) = sign(request.unwrap(), &params).unwrap().into_parts();
    let expected = instructions.headers().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).unwrap().1;
    assert_eq!(authorization, expected);
}

#[test]
fn status_and_a_paged_report_through_lambda_invoke() {
    // 2500 targets: three pages of at most 1000, in appid order.
    let appids: Vec<String> = (0..2500).map(|i| format!("wx{i:016}")).collect();
    let lambda = FakeLambda::start(move |seen, _| {
        let event = seen.payload();
        match event["rollout"].as_str() {
            Some("status") => ok(json!({ "rolloutId": "r1", "event": {"action": "update"}, "targets": 2500,
                "states": {"pending": 0, "running": 0, "retrying": 0, "done": 2497, "failed": 2, "quota": 1},
                "errCodes": {"89237": 2, "45009": 1}, "created": 1_700_000_000_000u64, "updated": 1_700_000_060_000u64,
                "errMsg": "openapi.pluginManager.rolloutStatus:ok", "errCode": 0 })),
            Some("report") => {
                let limit = event["limit"].as_u64().unwrap() as usize;
                let from =
                    event["after"].as_str().map_or(0, |after| appids.iter().position(|a| a == after).unwrap() + 1);
                let page: Vec<Value> = appids[from..]
                    .iter()
                    .take(limit)
                    .map(|appid| {
                        json!({
                    "authorizerAppid": appid, "state": "failed", "errCode": 89237,
                    "errMsg": "openapi.pluginManager.update:fail plugin \"x\", not found", "attempts": 1,
                    "updated": 1_700_000_000_000u64 })
                    })
                    .collect();
                let next = (from + limit < appids.len()).then(|| appids[from + limit - 1].clone());
                ok(json!({ "rolloutId": "r1", "targets": page, "next": next,
                           "errMsg": "openapi.pluginManager.rolloutReport:ok", "errCode": 0 }))
            }
            _ => (400, vec![], "{}".into()),
        }
    });
    let env = aws_env(&lambda, Some(TOKEN));
    let out = wxpm(&["status", "--id", "r1", "--function", "wx-plugin-manager"], &env);
    let status_out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", stderr(&out));
    let row = |first: &str| status_out.lines().find(|l| l.split_whitespace().next() == Some(first)).unwrap_or_default();
    assert_eq!(row("done").split_whitespace().collect::<Vec<_>>(), ["done", "2497"], "{status_out}");
    assert_eq!(row("89237").split_whitespace().collect::<Vec<_>>(), ["89237", "2"], "{status_out}");
    assert_eq!(lambda.seen()[0].payload(), json!({"rollout": "status", "rolloutId": "r1"}));

    let out = wxpm(&["report", "--id", "r1", "--function", "wx-plugin-manager"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = String::from_utf8(out.stdout.clone()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2501);
    assert_eq!(lines[0], "authorizerAppid,state,errCode,errMsg,attempts,updated");
    assert_eq!(
        lines[2500],
        r#"wx0000000000002499,failed,89237,"openapi.pluginManager.update:fail plugin ""x"", not found",1,1700000000000"#
    );
    let pages: Vec<Value> = lambda.seen()[1..].iter().map(Seen::payload).collect();
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[0], json!({"rollout": "report", "rolloutId": "r1", "limit": 1000}));
    assert_eq!(pages[1]["after"], "wx0000000000000999");
    assert_eq!(pages[2]["after"], "wx0000000000001999");

    let file = TempPath::new("report");
    let output = file.path().to_str().unwrap();
    let args = ["report", "--id", "r1", "--format", "jsonl", "--output", output, "--function", "wx-plugin-manager"];
    let out = wxpm(&args, &aws_env(&lambda, None));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("2500 targets written to"), "{}", stderr(&out));
    let written = std::fs::read_to_string(file.path()).unwrap();
    let rows: Vec<Value> = written.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2500);
    assert_eq!(rows[1234]["authorizerAppid"], "wx0000000000001234");

    let seen = lambda.seen();
    for request in &seen[..4] {
        assert_signed(request, &lambda.url, "eu-west-1", Some(TOKEN));
    }
    assert_signed(&seen[4], &lambda.url, "eu-west-1", None);
    let printed = format!("{status_out}{csv}{}{}", stderr(&out), written);
    assert_clean(&printed, &[KEY_ID.to_owned(), SECRET.to_owned(), TOKEN.to_owned()]);
}

#[test]
fn the_functions_thrown_error_and_lambdas_refusal_are_shown_without_credentials() {
    let lambda = FakeLambda::start(|seen, _| match seen.payload()["rolloutId"].as_str() {
        Some("gone") => {
            let message = json!({"errCode": -1, "errMsg": "openapi.pluginManager.rolloutStatus:fail no rollout gone"});
            let thrown = json!({"errorType": "InvalidEvent", "errorMessage": message.to_string()});
            (200, vec![("x-amz-function-error", "Unhandled".into())], thrown.to_string())
        }
        // Lambda quoting the request it could not verify, credentials and all.
        _ => {
            let message =
                format!("The request signature we calculated does not match. Credential={KEY_ID} {SECRET} {TOKEN}");
            (
                403,
                vec![("x-amzn-errortype", "InvalidSignatureException:http://internal/".into())],
                json!({"message": message}).to_string(),
            )
        }
    });
    let env = aws_env(&lambda, Some(TOKEN));
    let out = wxpm(&["status", "--id", "gone", "--function", "wx-plugin-manager"], &env);
    let thrown = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{thrown}");
    assert!(
        thrown.contains(
            "wxpm rollout status: InvalidEvent: openapi.pluginManager.rolloutStatus:fail no rollout gone (errCode -1)"
        ),
        "{thrown}"
    );
    assert!(out.stdout.is_empty());

    let out = wxpm(&["report", "--id", "r1", "--function", "wx-plugin-manager"], &env);
    let refused = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{refused}");
    assert!(
        refused.contains("Lambda Invoke answered HTTP 403: InvalidSignatureException: The request signature"),
        "{refused}"
    );
    assert_clean(&format!("{thrown}{refused}"), &[KEY_ID.to_owned(), SECRET.to_owned(), TOKEN.to_owned()]);
}

#[test]
fn start_sends_then_follows_the_rollout_until_every_target_is_settled() {
    let lambda = FakeLambda::start(|seen, index| {
        let event = seen.payload();
        let states = |pending: u64, running: u64, done: u64| {
            json!({ "rolloutId": "r1", "targets": 3, "event": {},
            "states": {"pending": pending, "running": running, "retrying": 0, "done": done, "failed": 0, "quota": 0},
            "errCodes": {}, "created": 0, "updated": 0, "errMsg": "openapi.pluginManager.rolloutStatus:ok", "errCode": 0 })
        };
        match (event["rollout"].as_str(), index) {
            // The first round runs out of time with one target unsent; the second sends it.
            (Some("start"), 0) => ok(json!({"rolloutId": "r1", "targets": 3, "done": 0, "sent": 2, "remaining": 1,
                                            "errMsg": "openapi.pluginManager.rolloutStart:ok", "errCode": 0})),
            (Some("start"), _) => ok(json!({"rolloutId": "r1", "targets": 3, "done": 2, "sent": 1, "remaining": 0,
                                            "errMsg": "openapi.pluginManager.rolloutStart:ok", "errCode": 0})),
            (Some("status"), 2) => ok(states(2, 1, 0)),
            (Some("status"), 3) => ok(states(0, 1, 2)),
            _ => ok(states(0, 0, 3)),
        }
    });
    let event = TempPath::file("event", r#"{"action":"update","pluginAppid":"wxplugin","userVersion":"1.0.0"}"#);
    let targets = TempPath::file("targets", r#"["wx0000000000000001","wx0000000000000002","wx0000000000000003"]"#);
    let args = [
        "start",
        "--id",
        "r1",
        "--event",
        event.path().to_str().unwrap(),
        "--targets",
        targets.path().to_str().unwrap(),
        "--interval",
        "0.05",
        "--function",
        "wx-plugin-manager",
    ];
    let out = wxpm(&args, &aws_env(&lambda, None));
    let progress = stderr(&out);
    assert!(out.status.success(), "{progress}");
    let seen: Vec<Value> = lambda.seen().iter().map(Seen::payload).collect();
    assert_eq!(seen[0]["targets"].as_array().unwrap().len(), 3);
    assert_eq!(seen[0]["event"]["userVersion"], "1.0.0");
    assert!(seen[1].get("targets").is_none(), "a later round names the recorded rollout only: {}", seen[1]);
    assert_eq!(seen.len(), 5, "two starts, three polls");
    // Not a terminal: a line per poll.
    assert!(
        progress.contains("0/3 settled | 0s, time left unknown yet | done 0 failed 0 quota 0 | pending 2 running 1"),
        "{progress}"
    );
    assert!(progress.contains("[#############.......]  66% 2/3 settled"), "{progress}");
    assert!(progress.contains("[####################] 100% 3/3 settled"), "{progress}");
    assert!(!progress.contains('\r'), "{progress}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\n3/3 settled (100%)\n"));
}

#[test]
fn credentials_and_region_come_from_the_aws_cli_when_the_environment_has_none() {
    let lambda = FakeLambda::start(|_, _| {
        ok(json!({ "rolloutId": "r1", "targets": 1, "event": {},
        "states": {"pending": 0, "running": 0, "retrying": 0, "done": 1, "failed": 0, "quota": 0}, "errCodes": {},
        "created": 0, "updated": 0, "errMsg": "openapi.pluginManager.rolloutStatus:ok", "errCode": 0 }))
    });
    // An `aws` that answers only for the profile asked for, as the CLI's export-credentials does.
    let bin = TempPath::dir("aws-cli");
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in\n\
         'configure export-credentials --format process --profile ops') echo '{{\"Version\":1,\"AccessKeyId\":\"{KEY_ID}\",\"SecretAccessKey\":\"{SECRET}\",\"SessionToken\":\"{TOKEN}\"}}' ;;\n\
         'configure get region --profile ops') echo cn-north-1 ;;\n\
         *) echo 'The config profile could not be found' >&2; exit 255 ;;\nesac\n"
    );
    let aws = bin.path().join("aws");
    std::fs::write(&aws, script).unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&aws).status().unwrap();
    let path = bin.path().to_str().unwrap();
    let env = [("PATH", path), ("AWS_ENDPOINT_URL", lambda.url.as_str())];
    let out = wxpm(&["status", "--id", "r1", "--function", "wx-plugin-manager", "--profile", "ops"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_signed(&lambda.seen()[0], &lambda.url, "cn-north-1", Some(TOKEN));

    let out = wxpm(&["status", "--id", "r1", "--function", "wx-plugin-manager", "--profile", "nobody"], &env);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("no AWS region") || said.contains("no AWS credentials"), "{said}");
    let empty = TempPath::dir("no-aws");
    let out = wxpm(
        &["status", "--id", "r1", "--function", "f"],
        &[("PATH", empty.path().to_str().unwrap()), ("AWS_REGION", "eu-west-1")],
    );
    let none = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{none}");
    assert!(none.contains("no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"), "{none}");
    assert!(none.contains("cannot run `aws`"), "{none}");
    assert_clean(&format!("{said}{none}{}", stderr(&out)), &[SECRET.to_owned(), TOKEN.to_owned()]);
}

#[test]
fn start_gives_up_when_rounds_send_nothing_more() {
    let lambda = FakeLambda::start(|_, _| {
        ok(json!({"rolloutId": "r1", "targets": 5, "done": 0, "sent": 0, "remaining": 5,
                  "errMsg": "openapi.pluginManager.rolloutStart:ok", "errCode": 0}))
    });
    let event = TempPath::file("event", r#"{"action":"update","pluginAppid":"wxplugin","userVersion":"1.0.0"}"#);
    let args = ["start", "--id", "r1", "--event", event.path().to_str().unwrap(), "--function", "wx-plugin-manager"];
    let out = wxpm(&args, &aws_env(&lambda, None));
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("5 of 5 targets still unsent after 3 rounds that sent no more"), "{said}");
    assert_eq!(lambda.seen().len(), 4, "the first round and three more");
    assert!(lambda.seen()[0].payload().get("targets").is_none(), "no --targets: every authorised mini program");
}
