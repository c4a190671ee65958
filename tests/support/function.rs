//! The real Lambda binary, running against a [`RuntimeApi`].

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::runtime_api::RuntimeApi;

/// A running `wx-plugin-manager`; dropping it kills the process.
pub struct Function {
    child: Child,
    /// Everything written to stdout and stderr, interleaved by chunk; notified as it grows.
    output: Arc<(Mutex<Vec<u8>>, Condvar)>,
}

impl Function {
    /// Starts the binary with a cleared environment: `PATH`, the Lambda variables, then `env` (which may override).
    pub fn spawn(api: &RuntimeApi, env: &[(&str, &str)]) -> Function {
        Function::spawn_command(Command::new(env!("CARGO_BIN_EXE_wx-plugin-manager")), api, env)
    }

    /// Starts `command` (a program and its arguments) in the binary's place, with the same environment: a scripted
    /// runtime client, for the tests of what drives a function rather than of the function itself.
    pub fn spawn_command(mut command: Command, api: &RuntimeApi, env: &[(&str, &str)]) -> Function {
        command.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        command
            .env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
            .env("AWS_LAMBDA_FUNCTION_NAME", "wx-plugin-manager")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2025/01/01/[$LATEST]0123456789abcdef")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/wx-plugin-manager")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("spawn {:?}: {e}", command.get_program()));
        let output: Arc<(Mutex<Vec<u8>>, Condvar)> = Arc::default();
        let pipes: [Box<dyn Read + Send>; 2] =
            [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
        for mut pipe in pipes {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut chunk = [0; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    output.0.lock().unwrap().extend_from_slice(&chunk[..n]);
                    output.1.notify_all();
                }
            });
        }
        Function { child, output }
    }

    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.0.lock().unwrap()).into_owned()
    }

    /// Waits until the output contains `needle`; false on timeout.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> bool {
        let (bytes, grew) = &*self.output;
        let missing = |b: &mut Vec<u8>| !String::from_utf8_lossy(b).contains(needle);
        let (_bytes, waited) = grew.wait_timeout_while(bytes.lock().unwrap(), timeout, missing).unwrap();
        !waited.timed_out()
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10)); // std has no wait with a timeout
        }
        self.child.try_wait().expect("try_wait")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
