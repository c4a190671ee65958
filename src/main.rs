//! The Lambda function: the library's [`lambda::run`](wx_plugin_manager::lambda::run) on one thread (several
//! invocations still interleave on it under `AWS_LAMBDA_MAX_CONCURRENCY`).

/// musl's allocator (the deployable x86_64 artefact is static musl) costs more CPU than the rest of an invocation's
/// allocations are worth; mimalloc keeps the process at glibc's speed or better, with a resident set as small.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    wx_plugin_manager::lambda::run().await
}
