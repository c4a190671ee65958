//! `wxpm emulator` as users run it: a real process serving on a port, with the built-in state or a state file.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `wxpm emulator` and waits for its first line, which names the URL it serves.
fn serve(extra: &[&str]) -> Served {
    let port = free_port().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wxpm"))
        .args(["emulator", "--port", &port])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("WeChat emulator listening on http://127.0.0.1:"), "{first}");
    Served { child, base: first.trim().rsplit(' ').next().unwrap().to_owned() }
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
    let path = std::env::temp_dir().join(format!("wxpm-cli-state-{}.json", std::process::id()));
    let world = json!({
        "accounts": [
            {"appid":"wxmine0000000001","secret":"s3cr3t-for-the-test","nickname":"Mine","headimgurl":"http://x/0"},
            {"appid":"wxpluginmine0001","secret":"p","nickname":"My Plugin","headimgurl":"http://x/1",
             "plugin":{"owner":"wxmine0000000001"}}
        ]
    });
    std::fs::write(&path, world.to_string()).unwrap();
    let served = serve(&["--state", path.to_str().unwrap()]);
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
    let path = std::env::temp_dir().join(format!("wxpm-cli-bad-{}.json", std::process::id()));
    std::fs::write(&path, r#"{"accounts": 3}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wxpm"))
        .args(["emulator", "--port", &free_port().to_string(), "--state", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot load state") && stderr.contains("accounts"), "{stderr}");
}

#[test]
fn wxpm_emulator_sets_api_security_writes_each_apps_settings_and_says_where() {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!("wxpm-api-security-test-{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wxpm"))
        .args(["emulator", "--port", &port, "--api-security", "required", "--api-security-dir"])
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("WeChat emulator listening on"), "{first}");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        said.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();

    let emu = wx_plugin_manager::emulator::Emulator::start().unwrap();
    for appid in [wx_plugin_manager::emulator::DEMO_APPID, wx_plugin_manager::emulator::DEMO_COMPONENT_APPID] {
        let path = dir.join(format!("{appid}.api-security.json"));
        let line = format!("API security keys for {appid}: {} (enforcement required)\n", path.display());
        assert!(said.contains(&line), "{said:?} lacks {line:?}");
        let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let expected: serde_json::Map<String, serde_json::Value> =
            emu.api_security_env(appid).into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
        assert_eq!(written, serde_json::Value::Object(expected));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
