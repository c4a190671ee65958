//! A platform's rollout, set up whole: the emulator with generated mini programs, the platform's store (a real
//! redis-server or dynalite), the rollout queue and its dead-letter queue on a real SQS-compatible server (moto), a
//! control function for start/status/report, and the event source mapping's stand-in driving more function processes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wechat_emulator::{
    Emulator, World, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID, DEMO_COMPONENT_SECRET, DEMO_COMPONENT_TOKEN,
};

use crate::support::esm::EventSourceMapping;
use crate::support::function::Function;
use crate::support::runtime_api::{Outcome, RuntimeApi};
use crate::support::shared_store::SharedStore;
use crate::support::sqs::{MotoServer, QueueWithDlq, SqsClient};

pub const COMPONENT: &str = DEMO_COMPONENT_APPID;
/// The Lambda timeout the mapping gives each batch (a record's attempt ends a second before it).
pub const BATCH_TIMEOUT: Duration = Duration::from_secs(4);
/// The queue's visibility timeout: past a record's lease (its attempt's deadline and 2 s), as the template keeps it
/// past six times the function's timeout.
pub const VISIBILITY: Duration = Duration::from_secs(6);

pub struct Rig {
    pub emu: Emulator,
    pub store: SharedStore,
    pub sqs: SqsClient,
    pub queue: QueueWithDlq,
    env: Vec<(String, String)>,
    control_api: RuntimeApi,
    pub control: Function,
    // Last: dropped after the functions that call it.
    _moto: MotoServer,
}

impl Rig {
    /// `programs` generated mini programs (from `seed`) authorising the demo platform, whose function keeps its state
    /// in `store` and gives up on a target after `max_receives` deliveries (the dead-letter queue's count).
    pub fn new(programs: usize, seed: u64, store: SharedStore, max_receives: u32) -> Rig {
        let world = World::builtin().with_authorizers(COMPONENT, programs, seed);
        let emu = Emulator::start_with(world, "127.0.0.1:0".parse().unwrap()).unwrap();
        let moto = MotoServer::start();
        let sqs = moto.client();
        let queue = sqs.create_queue_with_dlq(&format!("rollout-{seed}"), max_receives, VISIBILITY);
        let mut env: Vec<(String, String)> = [
            ("WX_COMPONENT_APPID", COMPONENT),
            ("WX_COMPONENT_SECRET", DEMO_COMPONENT_SECRET),
            ("WX_COMPONENT_TOKEN", DEMO_COMPONENT_TOKEN),
            ("WX_COMPONENT_AES_KEY", DEMO_COMPONENT_AES_KEY),
            ("WX_API_BASE", emu.base_url()),
            ("WX_ROLLOUT_QUEUE_URL", &queue.url),
            ("WX_ROLLOUT_MAX_RECEIVES", &max_receives.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        // The queue's credentials first: a DynamoDB store's override them (both servers take any). Moto keeps queues
        // by region, so its region comes last (dynalite has none).
        let aws = moto.aws_env();
        env.extend(aws.iter().map(|(k, v)| (k.to_string(), v.clone())));
        env.extend(store.env());
        env.extend(aws.into_iter().filter(|(k, _)| *k == "AWS_REGION").map(|(k, v)| (k.to_owned(), v)));
        let control_api = RuntimeApi::start();
        let control = spawn(&env, &control_api);
        let rig = Rig { emu, store, sqs, queue, env, control_api, control, _moto: moto };
        rig.push_ticket();
        rig
    }

    /// WeChat's ticket push, delivered to the control function (it keeps the ticket in the shared store).
    pub fn push_ticket(&self) {
        let push = self.emu.push_ticket(COMPONENT);
        let reply = self.control_api.invoke(&push.http_api_event(), BATCH_TIMEOUT).response();
        assert_eq!(reply["statusCode"], 200, "the ticket push: {reply}");
    }

    /// The mapping's stand-in: `concurrency` function processes taking batches of up to 10.
    pub fn mapping(&self, concurrency: usize) -> EventSourceMapping {
        let env = self.env.clone();
        EventSourceMapping::start(&self.queue.url, concurrency, BATCH_TIMEOUT, move |api| spawn(&env, api))
    }

    pub fn control(&self, event: Value) -> Outcome {
        self.control_api.invoke(&event, Duration::from_secs(10))
    }

    /// Starts the rollout, and starts it again while messages remain unsent (as `wxpm rollout start` does: moto
    /// takes a few hundred messages a second, so a big start needs more than one invocation); the last answer, its
    /// `sent` the total.
    #[track_caller]
    pub fn start(&self, id: &str, event: Value, targets: Option<&[String]>) -> Value {
        let mut control = json!({"rollout":"start","rolloutId":id,"event":event});
        if let Some(targets) = targets {
            control["targets"] = json!(targets);
        }
        let mut sent = 0;
        for _ in 0..20 {
            let mut answer = match self.control(control.clone()) {
                Outcome::Response(answer) => answer,
                // moto, one Python process, sometimes answers slower than the send's 2 s: a round that sent nothing
                // is said as a RolloutError, and the next round sends what it did not.
                Outcome::Error { error_type, error_message } if error_type == "RolloutError" => {
                    eprintln!("rollout {id}: a round sent nothing ({error_message}); again");
                    continue;
                }
                other => panic!("rollout {id}: {other:?}"),
            };
            assert_eq!(answer["errCode"], 0, "{answer}");
            sent += answer["sent"].as_u64().unwrap();
            if answer["remaining"] == 0 {
                answer["sent"] = json!(sent);
                return answer;
            }
            control["after"] = answer["next"].clone();
        }
        panic!("rollout {id}: messages still unsent after 20 starts");
    }

    #[track_caller]
    pub fn status(&self, id: &str) -> Value {
        self.control(json!({"rollout":"status","rolloutId":id})).response()
    }

    /// Every target's outcome, through every page of `report`, by appid.
    #[track_caller]
    pub fn report(&self, id: &str) -> BTreeMap<String, Value> {
        let mut all = BTreeMap::new();
        let mut after = Value::Null;
        loop {
            let page = self.control(json!({"rollout":"report","rolloutId":id,"after":after,"limit":200})).response();
            for target in page["targets"].as_array().unwrap() {
                all.insert(target["authorizerAppid"].as_str().unwrap().to_owned(), target.clone());
            }
            if page["next"].is_null() {
                return all;
            }
            after = page["next"].clone();
        }
    }

    /// Waits until no target of `id` is pending, running or retrying, and the queue holds nothing; the last status.
    #[track_caller]
    pub fn wait_settled(&self, id: &str, esm: &EventSourceMapping, timeout: Duration) -> Value {
        let until = Instant::now() + timeout;
        loop {
            let status = self.status(id);
            let open: u64 =
                ["pending", "running", "retrying"].iter().map(|s| status["states"][s].as_u64().unwrap()).sum();
            if open == 0 && self.sqs.counts(&self.queue.url).total() == 0 && esm.stats().in_flight == 0 {
                return status;
            }
            assert!(Instant::now() < until, "not settled within {timeout:?}: {status}\n{:?}", esm.stats());
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The targets named in the dead-letter queue's messages (it is drained).
    pub fn dead_letters(&self) -> Vec<String> {
        let mut targets: Vec<String> = self
            .sqs
            .drain_bodies(&self.queue.dlq_url)
            .iter()
            .map(|body| {
                let body: Value = serde_json::from_str(body).unwrap();
                body["event"]["authorizerAppid"].as_str().unwrap().to_owned()
            })
            .collect();
        targets.sort();
        targets
    }

    /// What must never appear in any output: the platform's secret and keys, the store's and AWS's secrets.
    pub fn secrets(&self) -> Vec<&'static str> {
        let mut secrets = vec![DEMO_COMPONENT_SECRET, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_TOKEN];
        secrets.extend(self.store.secrets());
        secrets.push(crate::support::sqs::SECRET_ACCESS_KEY);
        secrets
    }

    #[track_caller]
    pub fn assert_no_secret_in(&self, output: &str) {
        for secret in self.secrets() {
            assert!(!output.contains(secret), "a secret in the output");
        }
        assert!(!output.contains("access_token="), "a URL with a token in the output");
        // Tokens the emulator minted (authorizer and component tokens) never reach a line either.
        for token in self.emu.issued_tokens() {
            assert!(!output.contains(&token), "a token in the output");
        }
    }
}

fn spawn(env: &[(String, String)], api: &RuntimeApi) -> Function {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Function::spawn(api, &env)
}

/// The generated mini programs of the rig's world, in order.
pub fn generated(emu: &Emulator, seed_programs: usize) -> Vec<String> {
    let authorizations = emu.world().authorizations;
    let generated: Vec<String> = authorizations.into_iter().map(|a| a.authorizer).collect();
    generated[generated.len() - seed_programs..].to_vec()
}
