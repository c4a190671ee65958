//! A real DynamoDB-compatible server on a free loopback port: `dynalite` (npm, pure JS, in memory), with the token
//! table created, started the way [`testkit::redis::RedisServer`] starts `redis-server`.
//!
//! Where it is found: a `dynalite` on `PATH`, else `node_modules/.bin/dynalite` under `$DYNALITE_DIR`, else under
//! this repository's `tests/dynalite/` (`cd tests/dynalite && npm ci` installs it from the committed lockfile).
//! dynalite accepts any credentials and region; the ones below are fake and exist to prove they never show.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wx_plugin_manager::token::DynamoStore;

pub const TABLE: &str = "wx-tokens-test";
pub const REGION: &str = "eu-west-1";
pub const ACCESS_KEY_ID: &str = "ASIADYNALITETESTONLY";
pub const SECRET_ACCESS_KEY: &str = "dynalite-secret-access-key-for-tests-only";
pub const SESSION_TOKEN: &str = "dynalite-session-token-for-tests-only";

pub struct Dynalite {
    child: Option<Child>,
    pub port: u16,
}

impl Dynalite {
    /// dynalite on a free port, the table created (and ACTIVE).
    pub fn start() -> Dynalite {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Dynalite { child: None, port };
        server.restart();
        server
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_DYNAMODB`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `dynamodb://<table>`, for `WX_TOKEN_CACHE`.
    pub fn token_cache(&self) -> String {
        format!("dynamodb://{TABLE}")
    }

    /// What the function needs to reach it: the endpoint, a region and (fake) credentials, as Lambda sets them.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        aws_env(&self.url())
    }

    /// A store on the table, made as the function makes it.
    pub fn store(&self) -> DynamoStore {
        store_at(&self.url())
    }

    /// Starts the server (again) on the same port and creates the table. It keeps everything in memory: like a
    /// Redis without persistence, a restarted dynalite is empty (only the table is made again).
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string(), "--createTableMs", "20"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dynalite starts (node on PATH)");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < until, "dynalite did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let store = self.store();
        // On a thread of its own, so this works inside a test's runtime too. A node process just started, on a
        // machine busy with other tests, may take longer than a store call's 1 s to answer its first: a few tries.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let mut tries = 0;
            loop {
                match runtime.block_on(store.create_table()) {
                    Err(failure) if tries < 4 => {
                        tries += 1;
                        eprintln!("dynalite: creating the table: {failure}; again");
                        std::thread::sleep(Duration::from_millis(250));
                    }
                    done => return done,
                }
            }
        })
        .join()
        .unwrap()
        .expect("the table is created");
    }

    /// Kills the server outright (SIGKILL), as a crash would; everything in it is lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `AWS_ENDPOINT_URL_DYNAMODB` at `endpoint`, a region and the fake credentials, as Lambda sets them.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN.to_owned()),
    ]
}

/// A store of the table at `endpoint` (dynalite, or a stand-in that misbehaves), with the fake credentials.
pub fn store_at(endpoint: &str) -> DynamoStore {
    let env = aws_env(endpoint);
    DynamoStore::new(TABLE, |name| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())).unwrap()
}

/// The `dynalite` executable: on `PATH`, else under `$DYNALITE_DIR` or `tests/dynalite/`.
fn binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("dynalite"))
        .find(|file| file.is_file());
    let dir = std::env::var_os("DYNALITE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dynalite"));
    let installed = dir.join("node_modules/.bin/dynalite");
    on_path.or_else(|| installed.is_file().then_some(installed)).unwrap_or_else(|| {
        panic!(
            "dynalite is not installed: `cd tests/dynalite && npm ci` (or put dynalite on PATH, or set DYNALITE_DIR)"
        )
    })
}
