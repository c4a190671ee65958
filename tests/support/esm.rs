//! A stand-in for Lambda's SQS event source mapping (with `ReportBatchItemFailures`), driving real function
//! processes: `concurrency` pollers, each on its own thread with its own function process under its own
//! [`RuntimeApi`], receive up to 10 messages, hand them to the function as Lambda's SQS event, and delete what the
//! function did not list in `batchItemFailures`.
//!
//! As Lambda does: a function error, an answer Lambda cannot read, a timeout or an instance that dies fails the whole
//! batch (nothing is deleted; every message comes back after the visibility timeout, its receive count one higher);
//! a timed-out or dead instance is replaced by a fresh process (a cold start) before the next batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::function::Function;
use super::runtime_api::{Outcome, RuntimeApi};
use super::sqs::{Message, SqsClient};

/// Lambda's default batch size for SQS, and SQS's most per receive.
const BATCH_SIZE: u32 = 10;
/// Each receive's long poll: short, so that a poller notices `stop` quickly.
const WAIT: Duration = Duration::from_secs(1);
/// Past the invocation's timeout, the poller gives up on the answer and resets the instance, as Lambda does at the
/// timeout; the margin keeps an answer made at the deadline from being lost to the loopback's jitter.
const TIMEOUT_MARGIN: Duration = Duration::from_millis(500);
/// Lambda's limit on an instance's init phase.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the mapping has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Invocations (each with 1 to 10 records).
    pub batches: u64,
    /// Records handed to the function, redeliveries included.
    pub records: u64,
    /// Records the function listed in `batchItemFailures` (each left to come back).
    pub failures_reported: u64,
    /// Batches failed whole: a function error, an unreadable answer, a timeout or a dead instance (not counting
    /// batches abandoned by `stop`).
    pub whole_batch_failures: u64,
    /// Messages deleted after the function took them.
    pub deleted: u64,
    /// Deletions SQS refused, or failed to answer (the messages come back).
    pub delete_refused: u64,
    /// Receives that failed (the poller tries again).
    pub receive_errors: u64,
    /// Function processes killed on the test's request.
    pub kills: u64,
    /// Function processes replaced after dying or timing out.
    pub respawns: u64,
    /// Batches with a function right now.
    pub in_flight: u64,
}

/// One record of a batch as it was handed to the function.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub message_id: String,
    pub body: String,
    pub receive_count: u32,
}

/// How a batch ended.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchResult {
    /// No failure reported: every record deleted.
    Success,
    /// These message ids were listed in `batchItemFailures` (left to come back); the others were deleted.
    Partial(Vec<String>),
    /// Nothing deleted, and why: `function error <type>: <message>`, `unreadable answer: …`, `timed out`,
    /// `killed`, `the process exited`, or `stopped` (the mapping stopped with the batch in flight).
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub records: Vec<Delivery>,
    pub result: BatchResult,
    /// How long the function had it: from the invocation to its answer, or until the poller gave up on it.
    pub took: Duration,
}

type MakeFunction = dyn Fn(&RuntimeApi) -> Function + Send + Sync;
type KillWhen = Box<dyn FnMut(Duration) -> bool + Send>;

pub struct EventSourceMapping {
    shared: Arc<Shared>,
    pollers: Vec<JoinHandle<()>>,
    /// For the test's thread (`wait_until_idle`); each poller has its own.
    sqs: SqsClient,
}

struct Shared {
    queue_url: String,
    endpoint: String,
    queue_arn: String,
    region: String,
    timeout: Duration,
    make_function: Box<MakeFunction>,
    stopping: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
    slots: Vec<Mutex<Slot>>,
    kill: Mutex<Option<KillWhen>>,
}

#[derive(Default)]
struct State {
    stats: Stats,
    batches: Vec<Batch>,
    /// Pollers whose first process is past its init phase.
    started: usize,
}

/// A poller's function process, and what its earlier processes wrote.
#[derive(Default)]
struct Slot {
    function: Option<Function>,
    retired_output: String,
}

impl EventSourceMapping {
    /// Polls the queue at `queue_url` with `concurrency` pollers; `make_function` starts one function process
    /// against the Runtime API it is given (the test chooses its environment), and is called again for each
    /// replacement. `timeout` is the function's timeout: each invocation's deadline. Returns once every poller's
    /// first process has started (asked the Runtime API for work) or failed to.
    pub fn start(
        queue_url: &str,
        concurrency: usize,
        timeout: Duration,
        make_function: impl Fn(&RuntimeApi) -> Function + Send + Sync + 'static,
    ) -> EventSourceMapping {
        assert!(concurrency >= 1);
        let endpoint = origin(queue_url);
        let sqs = SqsClient::new(&endpoint);
        let queue_arn = sqs.queue_arn(queue_url);
        let region = queue_arn.split(':').nth(3).expect("arn:aws:sqs:<region>:<account>:<name>").to_owned();
        let shared = Arc::new(Shared {
            queue_url: queue_url.to_owned(),
            endpoint,
            queue_arn,
            region,
            timeout,
            make_function: Box::new(make_function),
            stopping: AtomicBool::new(false),
            state: Mutex::default(),
            changed: Condvar::new(),
            slots: (0..concurrency).map(|_| Mutex::default()).collect(),
            kill: Mutex::default(),
        });
        let pollers = (0..concurrency)
            .map(|index| {
                let shared = shared.clone();
                let name = format!("esm-poller-{index}");
                std::thread::Builder::new().name(name).spawn(move || poll(&shared, index)).unwrap()
            })
            .collect();
        let esm = EventSourceMapping { shared, pollers, sqs };
        let started = esm.wait_until_state(INIT_TIMEOUT + Duration::from_secs(1), |s| s.started == concurrency);
        assert!(started, "the pollers' functions did not start within {INIT_TIMEOUT:?}:\n{}", esm.output());
        esm
    }

    pub fn stats(&self) -> Stats {
        self.shared.state.lock().unwrap().stats
    }

    /// Every batch that has ended, in the order they ended.
    pub fn batches(&self) -> Vec<Batch> {
        self.shared.state.lock().unwrap().batches.clone()
    }

    /// Each poller's current function process, if it has one right now.
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.shared.slots.iter().map(|slot| slot.lock().unwrap().function.as_ref().map(Function::pid)).collect()
    }

    /// What every function process (the replaced ones too) wrote to stdout and stderr, poller by poller.
    pub fn output(&self) -> String {
        let slots = self.shared.slots.iter().map(|slot| {
            let slot = slot.lock().unwrap();
            slot.retired_output.clone() + &slot.function.as_ref().map(Function::output).unwrap_or_default()
        });
        slots.collect()
    }

    /// The next batch handed to a function (by whichever poller) has its process killed (SIGKILL) as soon as
    /// `when(time since the function was handed the batch)` holds, before the function answers: a crash mid-batch.
    /// If a batch ends first, the request waits for the next one. `stats().kills` counts the kills done.
    pub fn kill_one_during_next_batch(&self, when: impl FnMut(Duration) -> bool + Send + 'static) {
        *self.shared.kill.lock().unwrap() = Some(Box::new(when));
    }

    /// Waits until `done(&stats)` holds; false on timeout. Panics at once if a poller has died.
    pub fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&Stats) -> bool) -> bool {
        self.wait_until_state(timeout, |state| done(&state.stats))
    }

    fn wait_until_state(&self, timeout: Duration, mut done: impl FnMut(&State) -> bool) -> bool {
        let until = Instant::now() + timeout;
        let mut state = self.shared.state.lock().unwrap();
        loop {
            if done(&state) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.shared.changed.wait_timeout(state, left.min(Duration::from_millis(100))).unwrap().0;
            drop(state);
            self.check_pollers();
            state = self.shared.state.lock().unwrap();
        }
    }

    /// Waits until the queue holds nothing (visible, in flight or delayed) and no batch is with a function, for
    /// `quiet` in a row; false on timeout. Panics at once if a poller has died.
    pub fn wait_until_idle(&self, quiet: Duration, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut idle_since: Option<Instant> = None;
        loop {
            self.check_pollers();
            let idle = self.stats().in_flight == 0 && self.sqs.counts(&self.shared.queue_url).total() == 0;
            idle_since = if idle { idle_since.or(Some(Instant::now())) } else { None };
            if idle_since.is_some_and(|since| since.elapsed() >= quiet) {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops every poller (a batch in flight is abandoned, its messages left to come back) and kills every function
    /// process; waits a bounded time. Panics if a poller had panicked or does not stop.
    pub fn stop(&mut self) {
        if let Some(problem) = self.halt() {
            panic!("{problem}");
        }
    }

    fn halt(&mut self) -> Option<String> {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // A poller notices within a long poll (`WAIT`) plus a request's round trip, or a function's cold start.
        let until = Instant::now() + WAIT + INIT_TIMEOUT;
        while self.pollers.iter().any(|p| !p.is_finished()) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut problem = None;
        for (index, poller) in self.pollers.drain(..).enumerate() {
            if !poller.is_finished() {
                problem.get_or_insert(format!("poller {index} did not stop within {:?}", WAIT + INIT_TIMEOUT));
            } else if let Err(panic) = poller.join() {
                problem.get_or_insert(format!("poller {index} panicked: {}", panic_text(&panic)));
            }
        }
        for index in 0..self.shared.slots.len() {
            self.shared.retire(index);
        }
        problem
    }

    fn check_pollers(&self) {
        if let Some(index) = self.pollers.iter().position(|p| p.is_finished()) {
            if !self.shared.stopping.load(Ordering::SeqCst) {
                panic!("poller {index} ended while the mapping runs (it panicked: see its thread's message above)");
            }
        }
    }
}

impl Drop for EventSourceMapping {
    fn drop(&mut self) {
        if let Some(problem) = self.halt() {
            if !std::thread::panicking() {
                panic!("{problem}");
            }
        }
    }
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.lock().unwrap());
        self.changed.notify_all();
    }

    fn alive(&self, index: usize) -> bool {
        let mut slot = self.slots[index].lock().unwrap();
        slot.function.as_mut().is_some_and(|f| f.wait_exit(Duration::ZERO).is_none())
    }

    /// Kills the poller's process (if it still has one), keeping what it wrote.
    fn retire(&self, index: usize) {
        let mut slot = self.slots[index].lock().unwrap();
        if let Some(function) = slot.function.take() {
            let output = function.output();
            drop(function); // kills and reaps it
            slot.retired_output.push_str(&output);
        }
    }

    /// A fresh process under a fresh Runtime API (an old API's connections may still hold the dead process's long
    /// poll, which would swallow the next invocation), past its init phase as Lambda waits for it.
    fn spawn(&self, index: usize) -> RuntimeApi {
        let api = RuntimeApi::start();
        let function = (self.make_function)(&api);
        self.slots[index].lock().unwrap().function = Some(function);
        let until = Instant::now() + INIT_TIMEOUT;
        while !api.wait_for_polls(1, Duration::from_millis(50))
            && self.alive(index)
            && !self.stopping()
            && Instant::now() < until
        {}
        api
    }

    /// Lambda's SQS event for these messages.
    fn event(&self, messages: &[Message]) -> Value {
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "attributes": m.attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": self.region,
                })
            })
            .collect();
        json!({ "Records": records })
    }
}

fn poll(shared: &Shared, index: usize) {
    let sqs = SqsClient::new(&shared.endpoint);
    let mut api = shared.spawn(index);
    shared.update(|s| s.started += 1);
    while !shared.stopping() {
        if !shared.alive(index) {
            shared.retire(index);
            drop(api);
            api = shared.spawn(index);
            shared.update(|s| s.stats.respawns += 1);
            continue;
        }
        let messages = match sqs.try_receive(&shared.queue_url, BATCH_SIZE, WAIT, None) {
            Ok(messages) => messages,
            Err(_) => {
                shared.update(|s| s.stats.receive_errors += 1);
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        shared.update(|s| {
            s.stats.in_flight += 1;
            s.stats.batches += 1;
            s.stats.records += messages.len() as u64;
        });
        let handed = Instant::now();
        let result = invoke(shared, index, &api, &messages);
        let took = handed.elapsed();
        let (deleted, refused) = delete_taken(shared, &sqs, &messages, &result);
        let records = messages
            .iter()
            .map(|m| Delivery {
                message_id: m.message_id.clone(),
                body: m.body.clone(),
                receive_count: m.receive_count(),
            })
            .collect();
        shared.update(|s| {
            s.stats.in_flight -= 1;
            s.stats.deleted += deleted;
            s.stats.delete_refused += refused;
            match &result {
                BatchResult::Success => {}
                BatchResult::Partial(failed) => s.stats.failures_reported += failed.len() as u64,
                BatchResult::Failed(why) if why == "stopped" => {}
                BatchResult::Failed(_) => s.stats.whole_batch_failures += 1,
            }
            s.batches.push(Batch { records, result, took });
        });
    }
}

/// Hands the batch to the function (killing it on the test's request, resetting it at the deadline); how it ended.
fn invoke(shared: &Shared, index: usize, api: &RuntimeApi, messages: &[Message]) -> BatchResult {
    let event = shared.event(messages);
    let mut kill = shared.kill.lock().unwrap().take();
    let mut gave_up: Option<&str> = None;
    let started = Instant::now();
    let outcome = api.invoke_unless(&event, shared.timeout, || {
        if shared.stopping() {
            gave_up = Some("stopped");
        } else if kill.as_mut().is_some_and(|when| when(started.elapsed())) {
            kill = None;
            shared.retire(index);
            shared.update(|s| s.stats.kills += 1);
            gave_up = Some("killed");
        } else if started.elapsed() >= shared.timeout + TIMEOUT_MARGIN {
            gave_up = Some("timed out");
        } else if !shared.alive(index) {
            gave_up = Some("the process exited");
        }
        gave_up.is_some()
    });
    if let Some(kill) = kill {
        // Not fired during this batch: it waits for the next one, unless the test has asked for another kill since.
        shared.kill.lock().unwrap().get_or_insert(kill);
    }
    let ids: Vec<&str> = messages.iter().map(|m| m.message_id.as_str()).collect();
    match outcome {
        Outcome::Response(answer) => judge(&answer, &ids),
        Outcome::Error { error_type, error_message } => {
            BatchResult::Failed(format!("function error {error_type}: {error_message}"))
        }
        Outcome::NoAnswer => {
            // Lambda resets an instance that timed out; a killed or exited one is gone already.
            shared.retire(index);
            BatchResult::Failed(gave_up.unwrap_or("timed out").to_owned())
        }
    }
}

/// Deletes the messages the function took (none if the batch failed whole); how many were deleted and refused.
fn delete_taken(shared: &Shared, sqs: &SqsClient, messages: &[Message], result: &BatchResult) -> (u64, u64) {
    let keep: Vec<&str> = match result {
        BatchResult::Success => Vec::new(),
        BatchResult::Partial(failed) => failed.iter().map(String::as_str).collect(),
        BatchResult::Failed(_) => return (0, 0),
    };
    let handles: Vec<&str> =
        messages.iter().filter(|m| !keep.contains(&m.message_id.as_str())).map(|m| m.receipt_handle.as_str()).collect();
    let (deleted, refused) = match sqs.try_delete_message_batch(&shared.queue_url, &handles) {
        Ok(refused) => (handles.len() - refused.len(), refused.len()),
        Err(_) => (0, handles.len()),
    };
    (deleted as u64, refused as u64)
}

/// Reads the function's answer as Lambda does with `ReportBatchItemFailures`: nothing, `null`, an object without
/// `batchItemFailures` or with an empty list is a success; a list of this batch's message ids is a partial failure;
/// anything else (an id that is empty, missing or not in the batch, a list that is not one) fails the whole batch.
fn judge(answer: &Value, ids: &[&str]) -> BatchResult {
    let unreadable = || BatchResult::Failed(format!("unreadable answer: {answer}"));
    let failures = match answer {
        Value::Null => return BatchResult::Success,
        Value::Object(fields) => match fields.get("batchItemFailures") {
            None | Some(Value::Null) => return BatchResult::Success,
            Some(Value::Array(failures)) => failures,
            Some(_) => return unreadable(),
        },
        _ => return unreadable(),
    };
    let mut failed = Vec::new();
    for failure in failures {
        match failure.get("itemIdentifier").and_then(Value::as_str) {
            Some(id) if ids.contains(&id) => failed.push(id.to_owned()),
            _ => return unreadable(),
        }
    }
    if failed.is_empty() {
        BatchResult::Success
    } else {
        BatchResult::Partial(failed)
    }
}

/// `http://host:port` of a queue URL `http://host:port/<account>/<name>`: the SQS endpoint.
fn origin(queue_url: &str) -> String {
    let after_scheme = queue_url.find("://").map_or(0, |i| i + 3);
    let end = queue_url[after_scheme..].find('/').map_or(queue_url.len(), |i| after_scheme + i);
    queue_url[..end].to_owned()
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}
