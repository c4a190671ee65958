//! `wxpm emulator` as users run it: a real process serving on a port, with the built-in state or a state file, that
//! leaves nothing behind in the temp directory unless told where to keep its key files.
//!
//! Moved from the function's `tests/emulator_cli.rs` when `wxpm` became a crate of its own; names unchanged.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::temp::TempPath;
use wechat_emulator::{Emulator, DEMO_APPID, DEMO_COMPONENT_APPID};

/// How long a line or an exit may take to come: far more than any of them needs.
const WAIT: Duration = Duration::from_secs(10);

/// A running `wxpm emulator`, its temp directory (its TMPDIR) owned by the test; killed if the test did not stop it.
struct Served {
    child: Child,
    base: String,
    stderr: Receiver<String>,
    tmpdir: TempPath,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// The next line it writes on stderr.
    #[track_caller]
    fn stderr_line(&self) -> String {
        self.stderr.recv_timeout(WAIT).expect("a line on stderr in time")
    }

    /// Sends `signal` (`TERM`, `INT`) as a supervisor or Ctrl-C would, and waits for the exit; gives its status and
    /// what it wrote on stderr meanwhile.
    fn stop(&mut self, signal: &str) -> (ExitStatus, Vec<String>) {
        let sent = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(sent.success(), "kill -{signal}");
        let until = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < until, "wxpm emulator still running {WAIT:?} after SIG{signal}");
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.stderr.try_iter().collect())
    }

    /// Whatever is in its temp directory.
    fn leftovers(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.tmpdir.path()).unwrap().map(|entry| entry.unwrap().path()).collect()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Each line `from` gives, as it comes, until it ends.
fn lines_of(from: impl Read + Send + 'static) -> Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if send.send(line).is_err() {
                return;
            }
        }
    });
    receive
}

/// Starts `wxpm emulator` with its own temp directory and waits for its first line, which names the URL it serves.
fn serve(extra: &[&str]) -> Served {
    let tmpdir = TempPath::dir("emulator-cli-tmp");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wxpm"))
        .args(["emulator", "--port", &free_port().to_string()])
        .args(extra)
        .env("TMPDIR", tmpdir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines_of(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());
    let mut served = Served { child, base: String::new(), stderr, tmpdir };
    let first = stdout.recv_timeout(WAIT).expect("the first line in time");
    assert!(first.starts_with("WeChat emulator listening on http://127.0.0.1:"), "{first}");
    served.base = first.trim().rsplit(' ').next().unwrap().to_owned();
    served
}

/// A synchronous POST: the server under test is another process, so a throwaway runtime will do.
fn post(url: &str, body: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        client.post(url).body(body.to_owned()).send().await.unwrap().json().await.unwrap()
    })
}

#[test]
fn wxpm_emulator_serves_wechats_answers_with_the_builtin_state() {
    let served = serve(&[]);
    let token = post(
        &format!("{}/cgi-bin/stable_token", served.base),
        r#"{"grant_type":"client_credential","appid":"wxdemo0000000001","secret":"demo-secret-0123456789abcdef0123"}"#,
    );
    let token = token["access_token"].as_str().unwrap();
    let list = post(&format!("{}/wxa/plugin?access_token={token}", served.base), r#"{"action":"list"}"#);
    assert_eq!(list["errcode"], 0);
    assert_eq!(list["plugin_list"].as_array().unwrap().len(), 4);
    let refused = post(
        &format!("{}/wxa/plugin?access_token={token}", served.base),
        r#"{"action":"unbind","plugin_appid":"wxpluginpay00001"}"#,
    );
    assert_eq!(refused["errcode"], 89243);
}

#[test]
fn wxpm_emulator_loads_a_state_file() {
    let world = json!({
        "accounts": [
            {"appid":"wxmine0000000001","secret":"s3cr3t-for-the-test","nickname":"Mine","headimgurl":"http://x/0"},
            {"appid":"wxpluginmine0001","secret":"p","nickname":"My Plugin","headimgurl":"http://x/1",
             "plugin":{"owner":"wxmine0000000001"}}
        ]
    });
    let state = TempPath::file("state", &world.to_string());
    let served = serve(&["--state", state.path().to_str().unwrap()]);
    let token = post(
        &format!("{}/cgi-bin/stable_token", served.base),
        r#"{"grant_type":"client_credential","appid":"wxmine0000000001","secret":"s3cr3t-for-the-test"}"#,
    );
    let token = token["access_token"].as_str().unwrap();
    let applied = post(
        &format!("{}/wxa/plugin?access_token={token}", served.base),
        r#"{"action":"apply","plugin_appid":"wxpluginmine0001"}"#,
    );
    assert_eq!(applied["errcode"], 0);
    let demo = post(
        &format!("{}/cgi-bin/stable_token", served.base),
        r#"{"grant_type":"client_credential","appid":"wxdemo0000000001","secret":"demo-secret-0123456789abcdef0123"}"#,
    );
    assert_eq!(demo["errcode"], 40013, "the built-in accounts are not there");
}

#[test]
fn wxpm_emulator_refuses_a_bad_state_file_with_a_clear_message() {
    let state = TempPath::file("bad-state", r#"{"accounts": 3}"#);
    let out = Command::new(env!("CARGO_BIN_EXE_wxpm"))
        .args(["emulator", "--port", &free_port().to_string(), "--state", state.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot load state") && stderr.contains("accounts"), "{stderr}");
}

/// The settings `wxpm` wrote for `appid` in `dir` are the emulator's for it.
#[track_caller]
fn assert_settings_written(dir: &Path, appid: &str) {
    let emu = Emulator::start().unwrap();
    let written: Value = serde_json::from_str(&std::fs::read_to_string(settings_file(dir, appid)).unwrap()).unwrap();
    let expected: serde_json::Map<String, Value> =
        emu.api_security_env(appid).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    assert_eq!(written, Value::Object(expected));
}

fn settings_file(dir: &Path, appid: &str) -> PathBuf {
    dir.join(format!("{appid}.api-security.json"))
}

#[test]
fn wxpm_emulator_writes_no_key_files_while_api_security_is_off() {
    let mut served = serve(&[]);
    let said = served.stderr_line();
    assert!(said.starts_with("API security is off for every account: no key files written"), "{said}");
    assert_eq!(served.leftovers(), Vec::<PathBuf>::new());
    let (status, _) = served.stop("TERM");
    assert!(status.success(), "{status}");
    assert_eq!(served.leftovers(), Vec::<PathBuf>::new());
}

#[test]
fn wxpm_emulator_sets_api_security_writes_each_apps_settings_says_where_and_removes_them_when_stopped() {
    for (signal, enforcement) in [("TERM", "required"), ("INT", "optional")] {
        let mut served = serve(&["--api-security", enforcement]);
        let port = served.base.rsplit(':').next().unwrap().to_owned();
        let dir = served.tmpdir.path().join(format!("wxpm-emulator-{port}"));
        for appid in [DEMO_APPID, DEMO_COMPONENT_APPID] {
            let expected = format!(
                "API security keys for {appid}: {} (enforcement {enforcement})",
                settings_file(&dir, appid).display()
            );
            assert_eq!(served.stderr_line(), expected);
            assert_settings_written(&dir, appid);
        }
        assert!(served.stderr_line().contains("removed when the emulator stops"));
        let (status, said) = served.stop(signal);
        assert!(status.success(), "SIG{signal}: {status}");
        assert_eq!(served.leftovers(), Vec::<PathBuf>::new(), "SIG{signal}: {said:?}");
        let removed = format!("wxpm emulator: removed the API security key files from {}", dir.display());
        assert!(said.contains(&removed), "SIG{signal}: {said:?}");
    }
}

#[test]
fn wxpm_emulator_keeps_the_key_files_in_the_directory_it_is_given_and_says_where() {
    let kept = TempPath::new("api-security-dir");
    let mut served = serve(&["--api-security-dir", kept.path().to_str().unwrap()]);
    for appid in [DEMO_APPID, DEMO_COMPONENT_APPID] {
        let expected =
            format!("API security keys for {appid}: {} (enforcement off)", settings_file(kept.path(), appid).display());
        assert_eq!(served.stderr_line(), expected);
    }
    let (status, said) = served.stop("TERM");
    assert!(status.success(), "{status}");
    let stay = format!("wxpm emulator: the API security key files stay in {}", kept.path().display());
    assert!(said.contains(&stay), "{said:?}");
    for appid in [DEMO_APPID, DEMO_COMPONENT_APPID] {
        assert_settings_written(kept.path(), appid);
    }
    assert_eq!(served.leftovers(), Vec::<PathBuf>::new(), "nothing in the temp directory");
}
