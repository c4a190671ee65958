//! A real SQS on a free loopback port — moto's server (`pip install 'moto[server]'`, 5.2) — started the way
//! [`testkit::redis::RedisServer`] starts `redis-server`, and a small blocking client for what the rollout tests do
//! to a queue, over the AWS JSON protocol the function speaks (`X-Amz-Target: AmazonSQS.<Op>`).
//!
//! moto keeps the semantics the rollouts rely on: the visibility timeout, `ApproximateReceiveCount`, and the
//! `RedrivePolicy` that moves a message to its dead-letter queue once it has been received `maxReceiveCount` times.
//! It takes the region from the request's signature and checks nothing else of it: every request here carries the
//! fake credentials below in a SigV4-shaped header, and the function must be given [`REGION`] (see
//! [`MotoServer::aws_env`]), else it would look for the queues in another region's (empty) set.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use testkit::temp::TempPath;

pub const REGION: &str = "us-east-1";
pub const ACCESS_KEY_ID: &str = "ASIAMOTOSQSTESTONLY0";
pub const SECRET_ACCESS_KEY: &str = "moto-secret-access-key-for-tests-only";
pub const SESSION_TOKEN: &str = "moto-session-token-for-tests-only";

/// moto answers in well under a second on an idle machine; the bound allows for a suite that keeps both cores busy
/// with other servers and functions while Python imports moto.
const START_TIMEOUT: Duration = Duration::from_secs(15);

pub struct MotoServer {
    child: Option<Child>,
    pub port: u16,
    /// Its working directory and log, removed with it: nothing it writes outlives the test.
    dir: TempPath,
}

impl MotoServer {
    /// `moto_server` on a free port, answering SQS. Panics, saying how to install it, when it is not installed.
    pub fn start() -> MotoServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = TempPath::dir("moto");
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "moto_server does not start ({e}): install it with `python3 -m pip install 'moto[server]>=5.2,<6'` \
                     (.ci/test does), and put pip's scripts folder on PATH"
                )
            });
        let mut server = MotoServer { child: Some(child), port, dir };
        server.wait_until_it_answers();
        server
    }

    fn wait_until_it_answers(&mut self) {
        let client = self.client();
        let until = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("moto_server exited ({status}) before answering:\n{}", self.log());
            }
            // The port first: a refused connection is quick, so the loop does not wait on the client's timeout.
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && client.call("ListQueues", json!({})).is_ok() {
                return;
            }
            assert!(Instant::now() < until, "moto_server did not answer within {START_TIMEOUT:?}:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_SQS`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the function needs to reach it: the endpoint, the region and (fake) credentials, as Lambda sets them.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL_SQS", self.url()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_SESSION_TOKEN", SESSION_TOKEN.to_owned()),
        ]
    }

    pub fn client(&self) -> SqsClient {
        SqsClient::new(&self.url())
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A received message: what `ReceiveMessage` gives with every system attribute.
#[derive(Debug, Clone)]
pub struct Message {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub md5_of_body: String,
    /// `ApproximateReceiveCount`, `SentTimestamp`, `SenderId`, `ApproximateFirstReceiveTimestamp`, …: strings.
    pub attributes: Map<String, Value>,
}

impl Message {
    pub fn receive_count(&self) -> u32 {
        let count = self.attributes.get("ApproximateReceiveCount").and_then(Value::as_str);
        count.and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no ApproximateReceiveCount in {self:?}"))
    }
}

/// A queue and the dead-letter queue its `RedrivePolicy` names.
#[derive(Debug, Clone)]
pub struct QueueWithDlq {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
}

/// `ApproximateNumberOfMessages` (visible), `…NotVisible` (received, not yet deleted nor back) and `…Delayed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// A blocking SQS client (its own small tokio runtime): for plain `#[test]`s and the stand-in's threads, not for use
/// inside a tokio runtime. The typed calls panic on an error, naming the operation; [`call`](Self::call) does not.
pub struct SqsClient {
    endpoint: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl SqsClient {
    pub fn new(endpoint: &str) -> SqsClient {
        // Longer than any long poll here (20 s at most, SQS's own limit).
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        SqsClient { endpoint: endpoint.trim_end_matches('/').to_owned(), http, runtime }
    }

    /// One request: `POST /` with `X-Amz-Target: AmazonSQS.<op>`. The answer's JSON, or the error as text
    /// (`<op>: HTTP <status> <type>: <message>`, or the transport's error).
    pub fn call(&self, op: &str, body: Value) -> Result<Value, String> {
        let request = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("X-Amz-Target", format!("AmazonSQS.{op}"))
            .header("Content-Type", "application/x-amz-json-1.0")
            .header("Authorization", authorization())
            .header("X-Amz-Date", "20260101T000000Z")
            .header("X-Amz-Security-Token", SESSION_TOKEN)
            .body(body.to_string());
        self.runtime.block_on(async {
            let response = request.send().await.map_err(|e| format!("{op}: {e}"))?;
            let status = response.status();
            let text = response.text().await.map_err(|e| format!("{op}: {e}"))?;
            let json = if text.trim().is_empty() { Ok(json!({})) } else { serde_json::from_str(&text) };
            let answer: Value = json.map_err(|e| format!("{op}: HTTP {status}, not JSON ({e}): {text}"))?;
            if status.is_success() {
                return Ok(answer);
            }
            let kind = answer["__type"].as_str().unwrap_or_default();
            let kind = kind.rsplit('#').next().unwrap_or_default();
            let message = answer["message"].as_str().or(answer["Message"].as_str()).unwrap_or_default();
            Err(format!("{op}: HTTP {status} {kind}: {message}"))
        })
    }

    #[track_caller]
    fn ok(&self, op: &str, body: Value) -> Value {
        self.call(op, body).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates the queue (`attributes` as SQS names them: `VisibilityTimeout`, `RedrivePolicy`, …); its URL.
    #[track_caller]
    pub fn create_queue(&self, name: &str, attributes: &[(&str, String)]) -> String {
        let attributes: Map<String, Value> =
            attributes.iter().map(|(k, v)| ((*k).to_owned(), Value::String(v.clone()))).collect();
        let answer = self.ok("CreateQueue", json!({"QueueName": name, "Attributes": attributes}));
        answer["QueueUrl"].as_str().expect("CreateQueue gives QueueUrl").to_owned()
    }

    /// `name` and `name-dlq`: a message received `max_receive_count` times without being deleted moves to the
    /// dead-letter queue; a received message stays hidden for `visibility_timeout` (whole seconds).
    #[track_caller]
    pub fn create_queue_with_dlq(
        &self,
        name: &str,
        max_receive_count: u32,
        visibility_timeout: Duration,
    ) -> QueueWithDlq {
        let dlq_url = self.create_queue(&format!("{name}-dlq"), &[]);
        let dlq_arn = self.queue_arn(&dlq_url);
        let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count.to_string()});
        let url = self.create_queue(
            name,
            &[("VisibilityTimeout", visibility_timeout.as_secs().to_string()), ("RedrivePolicy", redrive.to_string())],
        );
        let arn = self.queue_arn(&url);
        QueueWithDlq { url, arn, dlq_url }
    }

    #[track_caller]
    pub fn queue_arn(&self, url: &str) -> String {
        let answer = self.ok("GetQueueAttributes", json!({"QueueUrl": url, "AttributeNames": ["QueueArn"]}));
        answer["Attributes"]["QueueArn"].as_str().expect("GetQueueAttributes gives QueueArn").to_owned()
    }

    #[track_caller]
    pub fn queue_url(&self, name: &str) -> String {
        let answer = self.ok("GetQueueUrl", json!({"QueueName": name}));
        answer["QueueUrl"].as_str().expect("GetQueueUrl gives QueueUrl").to_owned()
    }

    /// Sends one message (e.g. a poison one the function never sent); its message id.
    #[track_caller]
    pub fn send_message(&self, url: &str, body: &str) -> String {
        let answer = self.ok("SendMessage", json!({"QueueUrl": url, "MessageBody": body}));
        answer["MessageId"].as_str().expect("SendMessage gives MessageId").to_owned()
    }

    /// Up to `max` (1..=10) messages with every system attribute, long-polling up to `wait` (whole seconds);
    /// `visibility` overrides the queue's visibility timeout for these messages.
    #[track_caller]
    pub fn receive(&self, url: &str, max: u32, wait: Duration, visibility: Option<Duration>) -> Vec<Message> {
        self.try_receive(url, max, wait, visibility).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`receive`](Self::receive), giving the error rather than panicking.
    pub fn try_receive(
        &self,
        url: &str,
        max: u32,
        wait: Duration,
        visibility: Option<Duration>,
    ) -> Result<Vec<Message>, String> {
        assert!((1..=10).contains(&max), "SQS gives 1 to 10 messages at a time, not {max}");
        let mut request = json!({
            "QueueUrl": url,
            "MaxNumberOfMessages": max,
            "WaitTimeSeconds": wait.as_secs(),
            "MessageSystemAttributeNames": ["All"],
            "AttributeNames": ["All"],
        });
        if let Some(visibility) = visibility {
            request["VisibilityTimeout"] = json!(visibility.as_secs());
        }
        let answer = self.call("ReceiveMessage", request)?;
        let messages = answer["Messages"].as_array().cloned().unwrap_or_default();
        messages.iter().map(message).collect()
    }

    /// Deletes the messages of these receipt handles (10 at most); the handles SQS refused (e.g. no longer valid),
    /// with why.
    #[track_caller]
    pub fn delete_message_batch(&self, url: &str, receipt_handles: &[&str]) -> Vec<(String, String)> {
        self.try_delete_message_batch(url, receipt_handles).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`delete_message_batch`](Self::delete_message_batch), giving the error rather than panicking.
    pub fn try_delete_message_batch(
        &self,
        url: &str,
        receipt_handles: &[&str],
    ) -> Result<Vec<(String, String)>, String> {
        assert!(receipt_handles.len() <= 10, "SQS deletes 10 messages at a time at most");
        if receipt_handles.is_empty() {
            return Ok(Vec::new());
        }
        let entries: Vec<Value> =
            receipt_handles.iter().enumerate().map(|(i, h)| json!({"Id": i.to_string(), "ReceiptHandle": h})).collect();
        let answer = self.call("DeleteMessageBatch", json!({"QueueUrl": url, "Entries": entries}))?;
        let failed = answer["Failed"].as_array().cloned().unwrap_or_default();
        failed
            .iter()
            .map(|f| {
                let i = f["Id"].as_str().and_then(|id| id.parse::<usize>().ok()).filter(|i| *i < receipt_handles.len());
                let i = i.ok_or_else(|| format!("DeleteMessageBatch: a Failed entry without a known Id: {f}"))?;
                Ok((receipt_handles[i].to_owned(), format!("{}: {}", f["Code"], f["Message"])))
            })
            .collect()
    }

    #[track_caller]
    pub fn counts(&self, url: &str) -> Counts {
        let names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ];
        let answer = self.ok("GetQueueAttributes", json!({"QueueUrl": url, "AttributeNames": names}));
        let count = |name: &str| {
            let value = answer["Attributes"][name].as_str();
            value.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("GetQueueAttributes gives no {name}: {answer}"))
        };
        Counts { visible: count(names[0]), in_flight: count(names[1]), delayed: count(names[2]) }
    }

    /// Receives and deletes every visible message (a dead-letter queue's, say) until a receive comes back empty;
    /// their bodies, in the order received. Messages in flight elsewhere are not waited for.
    #[track_caller]
    pub fn drain_bodies(&self, url: &str) -> Vec<String> {
        let until = Instant::now() + Duration::from_secs(30);
        let mut bodies = Vec::new();
        loop {
            // Hidden long enough that a message is not received twice while the drain goes on.
            let messages = self.receive(url, 10, Duration::ZERO, Some(Duration::from_secs(60)));
            if messages.is_empty() {
                return bodies;
            }
            let handles: Vec<&str> = messages.iter().map(|m| m.receipt_handle.as_str()).collect();
            let refused = self.delete_message_batch(url, &handles);
            assert!(refused.is_empty(), "deleting drained messages: {refused:?}");
            bodies.extend(messages.into_iter().map(|m| m.body));
            assert!(Instant::now() < until, "{url} did not drain within 30 s ({} bodies so far)", bodies.len());
        }
    }
}

fn message(m: &Value) -> Result<Message, String> {
    let text = |name: &str| m[name].as_str().map(str::to_owned).ok_or_else(|| format!("a message without {name}: {m}"));
    Ok(Message {
        message_id: text("MessageId")?,
        receipt_handle: text("ReceiptHandle")?,
        body: text("Body")?,
        md5_of_body: text("MD5OfBody")?,
        attributes: m["Attributes"].as_object().cloned().unwrap_or_default(),
    })
}

/// A SigV4-shaped `Authorization` header with the fake key id: moto reads the region from its scope and checks no
/// signature.
fn authorization() -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20260101/{REGION}/sqs/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=0"
    )
}
