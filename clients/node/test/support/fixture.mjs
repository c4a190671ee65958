// The real thing, started for the tests: the WeChat emulator (`wxpm emulator`), `cargo lambda watch
// --only-lambda-apis` (the Lambda Invoke and Runtime APIs), and the Lambda binary polling it — as .ci/smoke does.
// Builds the two binaries with cargo (a no-op when they are fresh); stops everything on `stop()` and on exit.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FUNCTION, ROOT, binaryPaths, problems } from './preflight.mjs';

export { FUNCTION, ROOT };
export const DEMO = { appid: 'wxdemo0000000001', secret: 'demo-secret-0123456789abcdef0123' };
export const GATEWAY_KEY = 'node-client-gateway-key-0123456789';

const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, what, child, log) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}) before listening:\n${tail(log)}`);
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not listen on ${port} within 60 s:\n${tail(log)}`);
}

const tail = (file) => {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '';
  }
};

/** The two debug binaries: built by cargo when it is there (quick when fresh), else found as they are. */
function binaries() {
  const bins = binaryPaths();
  const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
  if (cargo.status === 0 && !process.env.WXPM_NODE_NO_BUILD) {
    process.stderr.write(`# cargo build --bin ${FUNCTION} --bin wxpm (in ${ROOT})\n`);
    const build = spawnSync('cargo', ['build', '--quiet', '--bin', FUNCTION, '--bin', 'wxpm'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    if (build.status !== 0) throw new Error(`cargo build failed (exit ${build.status})`);
  }
  for (const [name, file] of Object.entries(bins)) {
    if (!fs.existsSync(file)) {
      throw new Error(`${name} binary not found at ${file}: run \`cargo build --bin ${FUNCTION} --bin wxpm\` in ${ROOT} (CARGO_TARGET_DIR is honoured)`);
    }
  }
  return bins;
}

function start(what, command, args, options, logDir) {
  const log = path.join(logDir, `${what}.log`);
  const out = fs.openSync(log, 'w');
  const child = spawn(command, args, { ...options, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return { child, log };
}

async function stopChild(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export async function startFixture() {
  const missing = problems();
  if (missing.length > 0) throw new Error(`the function tests cannot run: ${missing.join('; ')}`);
  const bins = binaries();
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxpm-node-client-'));
  const started = [];
  try {
    const emuPort = await freePort();
    // Its API-security key files inside logDir, removed with it.
    const emuArgs = ['emulator', '--port', String(emuPort), '--api-security-dir', path.join(logDir, 'api-security')];
    const emu = start('emulator', bins.wxpm, emuArgs, { cwd: ROOT }, logDir);
    started.push([emu.child, 'SIGTERM']);
    await waitForPort(emuPort, 'wxpm emulator', emu.child, emu.log);

    const watchPort = await freePort();
    const watch = start('watch', 'cargo', ['lambda', 'watch', '--only-lambda-apis', '-A', '127.0.0.1', '-P', String(watchPort)], { cwd: ROOT }, logDir);
    started.push([watch.child, 'SIGINT']);
    await waitForPort(watchPort, 'cargo lambda watch', watch.child, watch.log);

    const env = {
      PATH: process.env.PATH,
      AWS_LAMBDA_RUNTIME_API: `http://127.0.0.1:${watchPort}/.rt/${FUNCTION}`,
      AWS_LAMBDA_FUNCTION_NAME: FUNCTION,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '128',
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      WX_APPID: DEMO.appid,
      WX_SECRET: DEMO.secret,
      WX_API_BASE: `http://127.0.0.1:${emuPort}`,
      GATEWAY_API_KEY: GATEWAY_KEY,
      RUST_LOG: 'info',
    };
    const fn = start('function', bins.fn, [], { cwd: ROOT, env }, logDir);
    started.push([fn.child, 'SIGTERM']);
    await new Promise((r) => setTimeout(r, 200));
    if (fn.child.exitCode !== null) throw new Error(`the function exited (${fn.child.exitCode}):\n${tail(fn.log)}`);

    const emulator = `http://127.0.0.1:${emuPort}`;
    return {
      logDir,
      emulator,
      invokeEndpoint: `http://127.0.0.1:${watchPort}`,
      async control(method, route, body) {
        const res = await fetch(`${emulator}/__emulator/${route}`, { method, body: body === undefined ? undefined : JSON.stringify(body) });
        if (!res.ok) throw new Error(`emulator ${method} ${route}: HTTP ${res.status} ${await res.text()}`);
        return res.json();
      },
      async stop() {
        for (const [child, signal] of started.reverse()) await stopChild(child, signal);
        removeLogs(logDir);
      },
    };
  } catch (e) {
    for (const [child, signal] of started.reverse()) await stopChild(child, signal);
    removeLogs(logDir); // the error quotes what they say
    throw e;
  }
}

/** The three processes' logs go with them, unless WXPM_NODE_KEEP_LOGS asks to keep them (and says where). */
function removeLogs(logDir) {
  if (process.env.WXPM_NODE_KEEP_LOGS) {
    process.stderr.write(`# logs of the emulator, cargo lambda watch and the function kept in ${logDir}\n`);
    return;
  }
  fs.rmSync(logDir, { recursive: true, force: true });
}
