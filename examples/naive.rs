//! The benchmark's floor: what a straightforward function does for the same job — one HTTP call to WeChat with a fixed
//! token (WX_ACCESS_TOKEN, against WX_API_BASE) on tokio's default runtime, returning WeChat's body as it is. No
//! validation, no conversion, no retries, no logging.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let base = std::env::var("WX_API_BASE")?;
    let token = std::env::var("WX_ACCESS_TOKEN")?;
    let url = format!("{base}/wxa/plugin?access_token={token}");
    let client = reqwest::Client::new();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let answer: Value = client.post(&url).json(&event.payload).send().await?.json().await?;
            Ok::<_, Error>(answer)
        }
    }))
    .await
}
