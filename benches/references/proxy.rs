//! The benchmark's second reference, the barest function that does this job: lambda_runtime on tokio's
//! current-thread runtime, one `reqwest::Client` built at start, each event POSTed as it is to `/wxa/plugin` with a
//! fixed token (`WX_ACCESS_TOKEN`, against `WX_API_BASE`), WeChat's JSON returned as it is. No validation, no
//! conversion, no retries, no deadline, no logging subscriber.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let base = std::env::var("WX_API_BASE")?;
    let token = std::env::var("WX_ACCESS_TOKEN")?;
    let url = format!("{base}/wxa/plugin?access_token={token}");
    let client = reqwest::Client::new();
    let (client, url) = (&client, url.as_str());
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let answer: Value = client.post(url).json(&event.payload).send().await?.json().await?;
        Ok::<_, Error>(answer)
    }))
    .await
}
