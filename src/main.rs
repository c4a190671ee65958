//! The Lambda function: the library's [`lambda::run`](wx_plugin_manager::edge::lambda::run) on one thread (several
//! invocations still interleave on it under `AWS_LAMBDA_MAX_CONCURRENCY`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    wx_plugin_manager::edge::lambda::run().await
}
