//! What the rollout tests stand on, checked on its own: moto keeps SQS's visibility timeout, receive count and
//! redrive to a dead-letter queue, and the event source mapping stand-in hands Lambda's SQS event to a function
//! process, deletes what the function took, and leaves what it listed, or a whole failed batch, to come back.
//!
//! Most of these drive a scripted function (a few lines of Python, which moto needs anyway) whose answers the test
//! chooses by the message bodies; the last drives the real binary, which does not take an SQS event yet.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use wechat_emulator::Emulator;

use crate::support::demo::demo_env;
use crate::support::esm::{BatchResult, Delivery, EventSourceMapping};
use crate::support::function::Function;
use crate::support::runtime_api::RuntimeApi;
use crate::support::sqs::{Counts, MotoServer, SqsClient, REGION};

/// Short, so that a message comes back within the test's time.
const VISIBILITY: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(5);
const PATIENCE: Duration = Duration::from_secs(30);

/// A Lambda runtime client that prints each event it is handed (`EVENT <json>`, one line) and answers by the
/// records' bodies: `hang` never answers, `error` fails the invocation, `retry…` is listed in `batchItemFailures`,
/// anything else is taken.
const SCRIPTED: &str = r#"
import json, os, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.load(r)
    print("EVENT " + json.dumps(event), flush=True)
    bodies = [record["body"] for record in event["Records"]]
    if "hang" in bodies:
        time.sleep(600)
    if "error" in bodies:
        path, answer = "/error", {"errorType": "Scripted", "errorMessage": "a record says error"}
    else:
        failures = [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"].startswith("retry")]
        path, answer = "/response", {"batchItemFailures": failures}
    urllib.request.urlopen(urllib.request.Request(api + request_id + path, json.dumps(answer).encode(), method="POST"))
"#;

fn scripted(api: &RuntimeApi) -> Function {
    let mut python = Command::new("python3");
    python.args(["-c", SCRIPTED]);
    Function::spawn_command(python, api, &[])
}

/// The events the scripted function printed, in the order each process was handed them.
fn events(output: &str) -> Vec<Value> {
    let lines = output.lines().filter_map(|line| line.strip_prefix("EVENT "));
    lines.map(|event| serde_json::from_str(event).expect("the scripted function prints JSON")).collect()
}

/// Every delivery of one message, in order.
fn deliveries_of(esm: &EventSourceMapping, message_id: &str) -> Vec<Delivery> {
    let batches = esm.batches();
    batches.into_iter().flat_map(|b| b.records).filter(|d| d.message_id == message_id).collect()
}

/// Receives one message, long-polling until it is visible (again).
#[track_caller]
fn receive_one(sqs: &SqsClient, url: &str) -> crate::support::sqs::Message {
    let mut got = sqs.receive(url, 10, Duration::from_secs(3), None);
    assert_eq!(got.len(), 1, "one message: {got:?}");
    got.remove(0)
}

#[test]
fn moto_hides_a_received_message_and_moves_it_to_the_dead_letter_queue_after_max_receive_count() {
    let moto = MotoServer::start();
    let sqs = moto.client();
    let q = sqs.create_queue_with_dlq("redrive", 2, VISIBILITY);
    assert_eq!(sqs.queue_url("redrive"), q.url);
    assert_eq!(q.arn, format!("arn:aws:sqs:{REGION}:123456789012:redrive"));
    let id = sqs.send_message(&q.url, "poison");

    for n in 1..=2 {
        let message = receive_one(&sqs, &q.url);
        assert_eq!((message.message_id.as_str(), message.body.as_str()), (id.as_str(), "poison"));
        assert_eq!(message.receive_count(), n);
        // Hidden for the visibility timeout, not gone.
        assert!(sqs.receive(&q.url, 10, Duration::ZERO, None).is_empty());
        assert_eq!(sqs.counts(&q.url), Counts { visible: 0, in_flight: 1, delayed: 0 });
    }
    // Received twice and never deleted: the next receive moves it to the dead-letter queue instead.
    std::thread::sleep(VISIBILITY + Duration::from_millis(200));
    assert!(sqs.receive(&q.url, 10, Duration::from_secs(1), None).is_empty());
    assert_eq!(sqs.counts(&q.url).total(), 0);
    assert_eq!(sqs.counts(&q.dlq_url), Counts { visible: 1, in_flight: 0, delayed: 0 });
    assert_eq!(sqs.drain_bodies(&q.dlq_url), ["poison"]);
    assert_eq!(sqs.counts(&q.dlq_url).total(), 0, "drained means deleted");
}

#[test]
fn the_stand_in_hands_lambdas_sqs_event_and_deletes_every_record_but_those_the_function_lists() {
    let moto = MotoServer::start();
    let sqs = moto.client();
    let q = sqs.create_queue_with_dlq("partial", 2, VISIBILITY);
    let taken = sqs.send_message(&q.url, "ok-1");
    let listed = sqs.send_message(&q.url, "retry-1");

    let mut esm = EventSourceMapping::start(&q.url, 2, TIMEOUT, scripted);
    assert!(esm.wait_until_idle(Duration::from_millis(500), PATIENCE), "{:?}", esm.stats());
    let pids = esm.pids();
    assert!(pids.iter().all(Option::is_some) && pids[0] != pids[1], "a process per poller: {pids:?}");
    let output = esm.output();
    esm.stop();

    // The listed record came back, one receive later, until the redrive took it; the other was deleted at once.
    let counts = |id: &str| deliveries_of(&esm, id).iter().map(|d| d.receive_count).collect::<Vec<_>>();
    assert_eq!(counts(&taken), [1]);
    assert_eq!(counts(&listed), [1, 2]);
    assert_eq!(sqs.drain_bodies(&q.dlq_url), ["retry-1"]);
    let stats = esm.stats();
    assert_eq!((stats.records, stats.deleted, stats.failures_reported), (3, 1, 2), "{stats:?}");
    assert_eq!((stats.whole_batch_failures, stats.kills, stats.respawns), (0, 0, 0), "{stats:?}");
    assert_eq!((stats.delete_refused, stats.receive_errors, stats.in_flight), (0, 0, 0), "{stats:?}");
    for batch in esm.batches() {
        let listed_here = batch.records.iter().any(|d| d.message_id == listed);
        let expected = if listed_here { BatchResult::Partial(vec![listed.clone()]) } else { BatchResult::Success };
        assert_eq!(batch.result, expected);
    }

    // The event, record by record, as Lambda's event source mapping builds it.
    let events = events(&output);
    let records: Vec<&Value> = events.iter().flat_map(|e| e["Records"].as_array().unwrap()).collect();
    assert_eq!(records.len(), 3, "{events:?}");
    let record = records.iter().find(|r| r["messageId"] == taken.as_str()).unwrap();
    let fields: Vec<&str> = record.as_object().unwrap().keys().map(String::as_str).collect();
    let lambdas = ["messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody"];
    assert_eq!(fields, [&lambdas[..], &["eventSource", "eventSourceARN", "awsRegion"]].concat());
    assert_eq!(record["body"], "ok-1");
    assert_eq!(record["md5OfBody"], "af0eade532c47784ad382d7506b94038", "MD5 of ok-1");
    assert_eq!(record["messageAttributes"], serde_json::json!({}));
    assert_eq!(record["eventSource"], "aws:sqs");
    assert_eq!(record["eventSourceARN"], q.arn.as_str());
    assert_eq!(record["awsRegion"], REGION);
    assert!(!record["receiptHandle"].as_str().unwrap().is_empty());
    let attributes = &record["attributes"];
    assert_eq!(attributes["ApproximateReceiveCount"], "1");
    for name in ["SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"] {
        assert!(attributes[name].as_str().is_some_and(|v| !v.is_empty()), "{name} in {attributes}");
    }
    // The pollers' outputs follow each other, not the deliveries: the counts, in any order.
    let listed_records = records.iter().filter(|r| r["messageId"] == listed.as_str());
    let mut counts: Vec<&str> =
        listed_records.map(|r| r["attributes"]["ApproximateReceiveCount"].as_str().unwrap()).collect();
    counts.sort();
    assert_eq!(counts, ["1", "2"]);
}

#[test]
fn a_function_error_fails_the_whole_batch_and_the_instance_is_kept() {
    let moto = MotoServer::start();
    let sqs = moto.client();
    let q = sqs.create_queue_with_dlq("errors", 2, VISIBILITY);
    let erring = sqs.send_message(&q.url, "error");
    let beside = sqs.send_message(&q.url, "ok-1");

    let mut esm = EventSourceMapping::start(&q.url, 1, TIMEOUT, scripted);
    let pid = esm.pids()[0];
    assert!(esm.wait_until(PATIENCE, |s| s.whole_batch_failures >= 2), "{:?}", esm.stats());
    assert!(esm.wait_until_idle(Duration::from_millis(500), PATIENCE), "{:?}", esm.stats());
    assert_eq!(esm.pids()[0], pid, "a function error does not replace the instance");
    esm.stop();

    // Both records were in each failed batch: neither was deleted, both came back and went to the DLQ.
    for id in [&erring, &beside] {
        assert_eq!(deliveries_of(&esm, id).iter().map(|d| d.receive_count).collect::<Vec<_>>(), [1, 2]);
    }
    let batches = esm.batches();
    assert_eq!(batches.len(), 2, "{batches:?}");
    for batch in &batches {
        assert_eq!(batch.result, BatchResult::Failed("function error Scripted: a record says error".into()));
    }
    let mut dead = sqs.drain_bodies(&q.dlq_url);
    dead.sort();
    assert_eq!(dead, ["error", "ok-1"]);
    let stats = esm.stats();
    assert_eq!((stats.deleted, stats.whole_batch_failures, stats.respawns), (0, 2, 0), "{stats:?}");
}

#[test]
fn a_process_killed_or_timed_out_mid_batch_fails_the_whole_batch_and_is_replaced() {
    let moto = MotoServer::start();
    let sqs = moto.client();
    let q = sqs.create_queue_with_dlq("crashes", 2, VISIBILITY);
    let hanging = sqs.send_message(&q.url, "hang");
    let timeout = Duration::from_secs(2);

    let mut esm = EventSourceMapping::start(&q.url, 1, timeout, scripted);
    let first = esm.pids()[0].expect("a process");
    let started = Instant::now();
    esm.kill_one_during_next_batch(|with_the_function| with_the_function >= Duration::from_millis(300));
    assert!(esm.wait_until(PATIENCE, |s| s.respawns >= 1), "{:?}", esm.stats());
    let second = esm.pids()[0].expect("a replacement");
    assert_ne!(second, first);

    // Back one visibility timeout later to the new process, which hangs too: reset at the deadline, replaced again.
    assert!(esm.wait_until(PATIENCE, |s| s.respawns >= 2), "{:?}", esm.stats());
    assert!(started.elapsed() >= VISIBILITY + timeout, "{:?}", started.elapsed());
    assert!(esm.wait_until_idle(Duration::from_millis(500), PATIENCE), "{:?}", esm.stats());
    assert!(!esm.pids().contains(&Some(second)));
    let output = esm.output();
    esm.stop();

    let batches = esm.batches();
    let results: Vec<&BatchResult> = batches.iter().map(|b| &b.result).collect();
    assert_eq!(results, [&BatchResult::Failed("killed".into()), &BatchResult::Failed("timed out".into())]);
    assert!(batches[0].took < timeout, "killed when asked, not at the deadline: {:?}", batches[0].took);
    // Reset at the deadline (and its margin), not at the Runtime API's own later limit.
    let reset = batches[1].took;
    assert!(reset >= timeout && reset < timeout + Duration::from_secs(2), "reset after {reset:?}");
    assert_eq!(deliveries_of(&esm, &hanging).iter().map(|d| d.receive_count).collect::<Vec<_>>(), [1, 2]);
    // Each process had the batch in hand when it was stopped.
    let handed: Vec<Value> = events(&output).iter().map(|e| e["Records"][0]["body"].clone()).collect();
    assert_eq!(handed, ["hang", "hang"]);
    assert_eq!(sqs.drain_bodies(&q.dlq_url), ["hang"]);
    let stats = esm.stats();
    assert_eq!((stats.kills, stats.respawns, stats.whole_batch_failures, stats.deleted), (1, 2, 2, 0), "{stats:?}");
}

#[test]
fn the_real_binary_is_handed_the_batch_and_its_error_leaves_the_message_to_come_back() {
    let moto = MotoServer::start();
    let sqs = moto.client();
    let q = sqs.create_queue_with_dlq("binary", 2, VISIBILITY);
    let id = sqs.send_message(&q.url, r#"{"rolloutId":"r1","event":{"action":"list"}}"#);

    // The demo mini program, not a third-party platform: rollouts are the platform's, so this function answers an
    // SQS event with an error, now and once it takes SQS events.
    let emu = Emulator::start().unwrap();
    let env: Vec<(String, String)> =
        demo_env(&emu).into_iter().chain(moto.aws_env()).map(|(k, v)| (k.to_owned(), v)).collect();
    let mut esm = EventSourceMapping::start(&q.url, 1, TIMEOUT, move |api| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Function::spawn(api, &env)
    });
    assert!(esm.wait_until(PATIENCE, |s| s.whole_batch_failures >= 2), "{:?}\n{}", esm.stats(), esm.output());
    assert!(esm.wait_until_idle(Duration::from_millis(500), PATIENCE), "{:?}", esm.stats());
    esm.stop();

    let deliveries = deliveries_of(&esm, &id);
    assert_eq!(deliveries.iter().map(|d| d.receive_count).collect::<Vec<_>>(), [1, 2]);
    for batch in esm.batches() {
        let BatchResult::Failed(why) = &batch.result else { panic!("{batch:?}") };
        assert!(why.starts_with("function error "), "{why}");
    }
    assert_eq!(sqs.drain_bodies(&q.dlq_url).len(), 1);
    assert_eq!(esm.stats().respawns, 0, "the binary outlives an error it answers");
}
