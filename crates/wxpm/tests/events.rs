//! Every file in events/ gives, through `wxpm invoke` on the embedded emulator, the answer the README's table shows;
//! and the table lists every file.
//!
//! Moved from the function's `tests/events.rs` when `wxpm` became a crate of its own; names unchanged.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use serde_json::Value;

/// A README sample-event row: the file, the environment to run it in, the expected answer.
struct Row {
    file: String,
    env: Vec<(String, String)>,
    expected: String,
}

/// The README's sample-event rows, e.g. `events/update.json`, no environment, "WxApiError 89256".
fn readme_rows() -> Vec<Row> {
    let readme = std::fs::read_to_string(format!("{}/README.md", crate::ROOT)).unwrap();
    readme
        .lines()
        .filter(|l| l.starts_with("| `events/"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let env = cells[3]
                .split_whitespace()
                .filter_map(|pair| pair.trim_matches('`').split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            Row { file: cells[1].trim_matches('`').to_owned(), env, expected: cells[4].to_owned() }
        })
        .collect()
}

#[test]
fn the_readme_lists_every_sample_event() {
    let listed: BTreeSet<String> = readme_rows().into_iter().map(|row| row.file).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(format!("{}/events", crate::ROOT))
        .unwrap()
        .map(|e| format!("events/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|name| name.ends_with(".json"))
        .collect();
    assert_eq!(listed, on_disk);
}

#[test]
fn every_sample_event_gives_the_answer_the_readme_shows() {
    let rows = readme_rows();
    assert!(rows.len() >= 9 + 8, "one sample per action, an invalid one, and each gateway kind with and without auth");
    for Row { file, env, expected } in rows {
        let out = Command::new(env!("CARGO_BIN_EXE_wxpm"))
            .args(["invoke", &file])
            .current_dir(crate::ROOT)
            .env_remove("WX_APPID")
            .env_remove("WX_ACCESS_TOKEN")
            .env_remove("GATEWAY_API_KEY")
            .envs(env)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("using the embedded WeChat emulator"), "{file}: {stderr}");
        let printed: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{file}: {e}"));
        if let Some(http) = expected.strip_prefix("HTTP ") {
            let (status, code) = http.split_once(' ').unwrap();
            assert!(out.status.success(), "{file}: {printed}");
            assert_eq!(printed["statusCode"].as_u64(), Some(status.parse().unwrap()), "{file}: {printed}");
            let body: Value = serde_json::from_str(printed["body"].as_str().unwrap()).unwrap();
            assert_eq!(body["errCode"].as_i64(), Some(code.parse().unwrap()), "{file}: {body}");
        } else if expected.starts_with("ok") {
            assert!(out.status.success(), "{file}: {printed}");
            assert_eq!(printed["errCode"], 0, "{file}");
            assert!(printed["errMsg"].as_str().unwrap().ends_with(":ok"), "{file}");
        } else {
            let (kind, code) = expected.split_once(' ').unwrap();
            assert_eq!(out.status.code(), Some(1), "{file}");
            assert_eq!(printed["errorType"], kind, "{file}: {printed}");
            let message: Value = serde_json::from_str(printed["errorMessage"].as_str().unwrap()).unwrap();
            assert_eq!(message["errCode"].as_i64(), Some(code.parse().unwrap()), "{file}: {message}");
        }
    }
}

#[test]
fn the_list_and_dev_apply_list_samples_show_what_the_readme_says() {
    let run = |file: &str| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_wxpm"))
            .args(["invoke", file])
            .current_dir(crate::ROOT)
            .env_remove("WX_APPID")
            .env_remove("WX_ACCESS_TOKEN")
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let list = run("events/list.json");
    let statuses: Vec<u64> =
        list["pluginList"].as_array().unwrap().iter().map(|p| p["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [2, 1, 3, 4]);
    assert_eq!(run("events/dev_apply_list.json")["applyList"].as_array().unwrap().len(), 5);
}

#[test]
fn wxpm_invoke_reads_stdin_and_refuses_a_file_that_is_not_json() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wxpm"))
        .args(["invoke", "-"])
        .env_remove("WX_APPID")
        .env_remove("WX_ACCESS_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"{\"action\":\"list\"}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let not_json = testkit::temp::TempPath::file("not-json", "action=list");
    let out = Command::new(env!("CARGO_BIN_EXE_wxpm")).arg("invoke").arg(not_json.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["errorType"], "InvalidEvent");
    assert!(printed["errorMessage"].as_str().unwrap().contains("the event is not JSON"));
}

#[test]
fn wxpm_invoke_on_a_file_it_cannot_read_is_a_usage_error_naming_the_file() {
    let missing = testkit::temp::TempPath::new("missing-event");
    let directory = testkit::temp::TempPath::dir("event-directory");
    for (path, why) in [(missing.path(), "No such file"), (directory.path(), "Is a directory")] {
        let out = Command::new(env!("CARGO_BIN_EXE_wxpm"))
            .arg("invoke")
            .arg(path)
            .env_remove("WX_APPID")
            .env_remove("WX_ACCESS_TOKEN")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // As clap reports a command line it cannot use: status 2, the message on stderr, nothing on stdout.
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
        assert!(out.stdout.is_empty(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stdout));
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "the file is named: {stderr}");
        assert!(stderr.contains("cannot read the event file") && stderr.contains(why), "{stderr}");
        assert!(!stderr.contains("InvalidEvent") && !stderr.contains("-501007"), "{stderr}");
    }
}
