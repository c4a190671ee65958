//! The Lambda function: set up once, then serve invocations (several at once under AWS_LAMBDA_MAX_CONCURRENCY).

use std::sync::Arc;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use wx_plugin_manager::{deadline_from_epoch_ms, logging, App};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    logging::init(logging::Target::Stdout);
    let app = match App::from_env().await {
        Ok(app) => Arc::new(app),
        Err(e) => {
            wx_plugin_manager::init_failed(&e).await;
            std::process::exit(1);
        }
    };
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<Value>| {
        let app = app.clone();
        async move {
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            app.handle(event.payload, deadline, &event.context.request_id).await
        }
    }))
    .await
}
