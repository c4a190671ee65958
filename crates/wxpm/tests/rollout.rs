//! `wxpm rollout`'s command line and its in-process path: a bad argument is a usage error (exit status 2) that says
//! what is wrong before anything runs; in-process, the control events reach the library as `wxpm invoke`'s calls do.

use std::process::{Command, Output};

use testkit::temp::TempPath;
use wechat_emulator::{DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID, DEMO_COMPONENT_SECRET, DEMO_COMPONENT_TOKEN};

/// Runs `wxpm rollout <args>` with nothing of the caller's WeChat or AWS settings.
pub fn wxpm(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wxpm"))
        .arg("rollout")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_usage_error(out: &Output, says: &str) {
    let stderr = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(says), "expected {says:?} in: {stderr}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn every_command_needs_the_rollout_id() {
    let event = TempPath::file("event", r#"{"action":"update","pluginAppid":"wxplugin","userVersion":"1.0.0"}"#);
    let event = event.path().to_str().unwrap();
    for args in [&["start", "--event", event][..], &["status"], &["report", "--format", "jsonl"]] {
        assert_usage_error(&wxpm(args, &[]), "--id <ID>");
    }
    assert_usage_error(&wxpm(&["status", "--id", "no spaces"], &[]), "a rollout id is 1 to 64 letters");
    assert_usage_error(&wxpm(&["start", "--id", "r1"], &[]), "--event <EVENT>");
}

#[test]
fn a_bad_targets_or_event_file_is_a_usage_error_that_says_where() {
    let event = TempPath::file("event", r#"{"action":"update","pluginAppid":"wxplugin","userVersion":"1.0.0"}"#);
    let start = |targets: &str| {
        let out = wxpm(&["start", "--id", "r1", "--event", event.path().to_str().unwrap(), "--targets", targets], &[]);
        // Nothing ran: no function was configured, and that would have been exit status 1.
        assert!(!stderr(&out).contains("WX_"), "{}", stderr(&out));
        out
    };
    let cases = [
        ("wx0000000000000001\n\n# a comment\nwx 0002\n", "line 4 (\"wx 0002\") is not an appid"),
        (r#"["wx0000000000000001", 2]"#, "item 2 is 2, not an appid"),
        (r#"["wx0000000000000001", "#, "the targets file is not JSON"),
        ("\n# nobody\n", "names no appid"),
    ];
    for (contents, says) in cases {
        let file = TempPath::file("targets", contents);
        assert_usage_error(&start(file.path().to_str().unwrap()), says);
    }
    assert_usage_error(&start("/nonexistent/targets.txt"), "cannot read the targets file");

    let targets = TempPath::file("targets", "wx0000000000000001\n");
    let targets = targets.path().to_str().unwrap();
    for (contents, says) in [("[1]", "must hold a JSON object"), ("{", "the event file is not JSON")] {
        let event = TempPath::file("event", contents);
        let out = wxpm(&["start", "--id", "r1", "--event", event.path().to_str().unwrap(), "--targets", targets], &[]);
        assert_usage_error(&out, says);
    }
    let out = wxpm(&["status", "--id", "r1", "--endpoint-url", "http://127.0.0.1:9"], &[]);
    assert_usage_error(&out, "--endpoint-url and --profile are for --function");
    assert_usage_error(&wxpm(&["status", "--id", "r1", "--timeout", "0"], &[]), "--timeout must be");
    let out = wxpm(&["start", "--id", "r1", "--event", "x", "--interval", "-1"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn in_process_the_library_answers_from_the_environment() {
    let platform = [
        ("WX_COMPONENT_APPID", DEMO_COMPONENT_APPID),
        ("WX_COMPONENT_SECRET", DEMO_COMPONENT_SECRET),
        ("WX_COMPONENT_TOKEN", DEMO_COMPONENT_TOKEN),
        ("WX_COMPONENT_AES_KEY", DEMO_COMPONENT_AES_KEY),
    ];
    let out = wxpm(&["status", "--id", "r-none"], &platform);
    let stderr = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("WX_TOKEN_CACHE is memory"), "{stderr}");
    // A platform's rollouts keep their slots in the fleet's store: with this instance's memory alone, none runs.
    assert!(stderr.contains("wxpm rollout status: ConfigError: "), "{stderr}");
    assert!(stderr.contains("rollouts need the platform's shared store"), "{stderr}");
    // The command says what failed; the invocation's record would say it again, as JSON.
    assert!(!stderr.contains("\"message\":\"invocation\""), "{stderr}");

    // Without the platform, the function's own configuration error.
    let out = wxpm(&["report", "--id", "r1"], &[("WX_APPID", "wx0000000000000001"), ("WX_SECRET", "s")]);
    let stderr = self::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ConfigError: ") && stderr.contains("third-party platform"), "{stderr}");
}
