//! The emulator's whole state behind one lock: the world, the tokens, the platform's desk, the virtual clock, the
//! scripted faults, the request log and the counters.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::desk::ComponentDesk;
use super::invalid::Invalid;
use super::rates::FaultDraws;
use super::tokens::TokenLedger;
use super::usage::PluginUsage;
use super::world::World;
use wechat_wire::paths;

/// What a scripted answer does instead of (or on top of) the normal one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answer `{"errcode":N,"errmsg":…}` (HTTP 200) without processing the request.
    Errcode {
        /// WeChat's error code to answer, e.g. 45009.
        errcode: i64,
        /// The errmsg before the ` rid: …` suffix; WeChat's usual text for `errcode` when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        errmsg: Option<String>,
    },
    /// Answer this HTTP status with an HTML body, without processing the request.
    Status {
        /// The HTTP status, e.g. 502 (500 if outside 100–999).
        status: u16,
    },
    /// Answer this redirect status (301, 302, 307, 308) with a `Location`, without processing the request.
    Redirect {
        /// The HTTP status: 301, 302, 307 or 308.
        status: u16,
        /// The `Location` header's value, the URL the client is sent to.
        location: String,
    },
    /// Wait, then process and answer normally (a client that gave up may still have changed state).
    Delay {
        /// How long to wait before processing, in milliseconds.
        ms: u64,
    },
    /// Close the connection without an answer and without processing the request.
    Drop,
    /// Answer HTTP 200 with a body that is not JSON, without processing the request.
    NonJson {
        /// The body, answered as `text/html`; a short HTML page when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// Process normally, but label the JSON answer `text/plain`, as WeChat sometimes does.
    TextPlain,
    /// API security: process normally; a secured answer is signed, then one bit of its ciphertext is flipped (the
    /// signature no longer verifies, nor does the envelope decrypt). Plain answers are left alone.
    TamperedEnvelope,
    /// API security: process normally; a secured answer carries a `Wechatmp-Serial` no client was given, signed with
    /// another key than the current certificate's (the deprecated one's), and no deprecated pair.
    UnknownCertificate,
    /// API security: process normally; a secured answer is made out, consistently (header, signature, additional
    /// data, `_appid`), to another app (`wxforeignapp0001`): only comparing the appid catches it.
    ForeignAppid,
    /// API security: process normally; a secured answer is stamped 360 s in the past, correctly signed and encrypted
    /// with that timestamp: only the freshness check catches it.
    StaleTimestamp,
    /// Process normally (the change is made), then hold the answer `ms` milliseconds and close the connection
    /// without one: a client whose deadline passes first sees a timeout, though the change was made.
    TimeoutAfterApply {
        /// How long the answer is held before the connection is closed, in milliseconds.
        ms: u64,
    },
}

/// One request as the emulator received it.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// The URL path without the query, e.g. `/wxa/plugin`.
    pub path: String,
    /// The raw query string, without the `?` (e.g. `access_token=…`); empty when there is none.
    pub query: String,
    /// The `Content-Type` header, if the client sent one.
    pub content_type: Option<String>,
    /// The body as text (invalid UTF-8 replaced by U+FFFD).
    pub body: String,
    /// The scripted fault that answered it, if any.
    pub fault: Option<Fault>,
    /// Virtual unix seconds.
    pub at: i64,
}

impl LoggedRequest {
    /// The first value of query parameter `name` (e.g. `access_token`), percent-decoded; `None` if absent.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// The body parsed as JSON; `None` if it is not JSON (or empty).
    pub fn json_body(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// This machine's wall clock, in unix seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A clock that runs with real time from a chosen start and that tests can move forward.
#[derive(Debug)]
pub(crate) struct Clock {
    start_unix: i64,
    started: Instant,
    advanced: i64,
}

impl Clock {
    pub(crate) fn new(start_unix: Option<i64>) -> Clock {
        Clock { start_unix: start_unix.unwrap_or_else(unix_now), started: Instant::now(), advanced: 0 }
    }

    pub(crate) fn now(&self) -> i64 {
        self.start_unix + self.started.elapsed().as_secs() as i64 + self.advanced
    }

    /// This machine's wall clock, moved as far as the virtual clock was: API security's timestamps. A client stamps
    /// its requests and checks WeChat's answers by its own clock, so the layer follows the wall clock even when the
    /// world started at a fixed time; `advance` still makes timestamps go stale.
    pub(crate) fn layer_now(&self) -> i64 {
        unix_now() + self.advanced
    }

    /// Time only moves forward: a negative move is refused.
    pub(crate) fn advance(&mut self, secs: i64) -> Result<(), Invalid> {
        if secs < 0 {
            return Err(Invalid::Request(format!("the clock only moves forward, not by {secs} s")));
        }
        self.advanced += secs;
        Ok(())
    }
}

const LOG_CAPACITY: usize = 100_000;

/// The paths fault rates apply to.
const PLUGIN_PATHS: [&str; 2] = [paths::PLUGIN, paths::DEV_PLUGIN];

pub(crate) struct State {
    pub world: World,
    pub initial: World,
    pub tokens: TokenLedger,
    pub clock: Clock,
    pub faults: HashMap<String, VecDeque<Fault>>,
    pub log: VecDeque<LoggedRequest>,
    pub counters: BTreeMap<String, u64>,
    pub platform: ComponentDesk,
    /// Faults drawn at rates on the plugin endpoints, when set.
    pub rates: Option<FaultDraws>,
    pub usage: PluginUsage,
}

impl State {
    pub(crate) fn new(world: World) -> State {
        let clock = Clock::new(world.now);
        State {
            platform: ComponentDesk::with_authorizations(&world.authorizations, clock.now()),
            clock,
            initial: world.clone(),
            world,
            tokens: TokenLedger::default(),
            faults: HashMap::new(),
            log: VecDeque::new(),
            counters: BTreeMap::new(),
            rates: None,
            usage: PluginUsage::default(),
        }
    }

    pub(crate) fn reset(&mut self) {
        *self = State::new(self.initial.clone());
    }

    pub(crate) fn script(&mut self, path: &str, fault: Fault, times: usize) {
        self.faults.entry(path.to_owned()).or_default().extend(std::iter::repeat_n(fault, times));
    }

    fn next_fault(&mut self, path: &str) -> Option<Fault> {
        for key in [path, "*"] {
            if let Some(f) = self.faults.get_mut(key).and_then(VecDeque::pop_front) {
                return Some(f);
            }
        }
        None
    }

    /// Counts and logs a request to one of WeChat's paths; gives the scripted fault that answers it, if any.
    pub(crate) fn receive(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        content_type: Option<String>,
        body: &[u8],
    ) -> Option<Fault> {
        // Every plugin call takes its draw, so the n-th call meets the n-th draw whatever was scripted; a scripted
        // fault wins over the drawn one.
        let drawn = self.rates.as_mut().filter(|_| PLUGIN_PATHS.contains(&path)).and_then(FaultDraws::draw);
        let fault = self.next_fault(path).or(drawn);
        *self.counters.entry(path.to_owned()).or_default() += 1;
        let entry = LoggedRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            content_type,
            body: String::from_utf8_lossy(body).into_owned(),
            fault: fault.clone(),
            at: self.clock.now(),
        };
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(entry);
        fault
    }

    /// A dump for people and for the control endpoint.
    pub(crate) fn snapshot(&mut self) -> Value {
        let now = self.clock.now();
        self.world.expire_pending(now);
        json!({
            "now": now,
            "world": self.world,
            "tokens_issued": self.tokens.issued().len(),
            "counters": self.counters,
            "platform": self.platform.snapshot(),
        })
    }
}

pub(crate) type Shared = Arc<Mutex<State>>;

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the state half-written in a way that matters to a test double.
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
