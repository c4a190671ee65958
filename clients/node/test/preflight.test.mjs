// `npm test` checks what it needs before running anything (test/support/preflight.mjs as `pretest`): without
// cargo-lambda it stops at once, naming the fix, instead of cancelling every function test.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CLIENT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test('npm test runs the preflight first', () => {
  const { scripts } = JSON.parse(fs.readFileSync(path.join(CLIENT, 'package.json'), 'utf8'));
  assert.equal(scripts.pretest, 'node test/support/preflight.mjs');
});

test('without cargo-lambda: exit 1 at once, naming `pip install cargo-lambda`', () => {
  // PATH without any folder holding cargo-lambda, and an empty CARGO_HOME (cargo also looks in its bin/).
  const PATH = process.env.PATH.split(path.delimiter)
    .filter((dir) => dir !== '' && !fs.existsSync(path.join(dir, 'cargo-lambda')))
    .join(path.delimiter);
  const cargoHome = fs.mkdtempSync(path.join(os.tmpdir(), 'wxpm-node-preflight-'));
  try {
    const started = Date.now();
    const run = spawnSync(process.execPath, ['test/support/preflight.mjs'], {
      cwd: CLIENT,
      env: { ...process.env, PATH, CARGO_HOME: cargoHome },
      encoding: 'utf8',
    });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /^npm test cannot run yet; nothing was tested:\n/);
    assert.match(run.stderr, /cargo-lambda is missing .*`pip install cargo-lambda`/);
    assert.ok(Date.now() - started < 10_000, 'the check takes seconds, not a test run');
  } finally {
    fs.rmSync(cargoHome, { recursive: true, force: true });
  }
});

test('WXPM_NODE_NO_BUILD with no binaries: names the cargo build to run', () => {
  const target = fs.mkdtempSync(path.join(os.tmpdir(), 'wxpm-node-preflight-'));
  try {
    const run = spawnSync(process.execPath, ['test/support/preflight.mjs'], {
      cwd: CLIENT,
      env: { ...process.env, WXPM_NODE_NO_BUILD: '1', CARGO_TARGET_DIR: target },
      encoding: 'utf8',
    });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /debug\/wx-plugin-manager is not built and WXPM_NODE_NO_BUILD is set: run `cargo build --bin wx-plugin-manager --bin wxpm`/);
  } finally {
    fs.rmSync(target, { recursive: true, force: true });
  }
});

test('with everything there: exit 0, silent', () => {
  const run = spawnSync(process.execPath, ['test/support/preflight.mjs'], { cwd: CLIENT, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stderr, '');
});
