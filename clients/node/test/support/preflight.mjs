// What `npm test` needs before any test starts, checked at once: `npm ci` done, cargo, cargo-lambda (the tests serve
// the function with `cargo lambda watch`), and with WXPM_NODE_NO_BUILD the binaries already built. Run as the
// `pretest` script: without it, a missing cargo-lambda surfaced as every function test cancelled, its cause far
// above the summary.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../../../..');
const CLIENT = path.resolve(HERE, '../..');
export const FUNCTION = 'wx-plugin-manager';

export function targetDir() {
  const dir = process.env.CARGO_TARGET_DIR;
  return dir ? path.resolve(ROOT, dir) : path.join(ROOT, 'target');
}

export function binaryPaths() {
  const dir = path.join(targetDir(), 'debug');
  return { fn: path.join(dir, FUNCTION), wxpm: path.join(dir, 'wxpm') };
}

const works = (command, args) => {
  const probe = spawnSync(command, args, { encoding: 'utf8' });
  return probe.status === 0;
};

/** Each missing thing with the command that fixes it; empty when the tests can run. */
export function problems() {
  const found = [];
  const { devDependencies } = JSON.parse(fs.readFileSync(path.join(CLIENT, 'package.json'), 'utf8'));
  const missing = Object.keys(devDependencies).filter((name) => !fs.existsSync(path.join(CLIENT, 'node_modules', name, 'package.json')));
  if (missing.length > 0) found.push(`the dev dependencies are not installed (${missing.join(', ')}): run \`npm ci\` in ${CLIENT}`);
  if (!works('cargo', ['--version'])) {
    found.push('cargo is not on PATH: install Rust (https://rustup.rs), then `pip install cargo-lambda`');
  } else if (!works('cargo', ['lambda', '--version'])) {
    found.push('cargo-lambda is missing (the tests serve the function with `cargo lambda watch`): `pip install cargo-lambda` (with pyenv, then `pyenv rehash`)');
  }
  if (process.env.WXPM_NODE_NO_BUILD) {
    for (const file of Object.values(binaryPaths())) {
      if (!fs.existsSync(file)) {
        found.push(`${file} is not built and WXPM_NODE_NO_BUILD is set: run \`cargo build --bin ${FUNCTION} --bin wxpm\` in ${ROOT}, or unset WXPM_NODE_NO_BUILD`);
      }
    }
  }
  return found;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const found = problems();
  if (found.length > 0) {
    process.stderr.write(`npm test cannot run yet; nothing was tested:\n${found.map((p) => `  - ${p}`).join('\n')}\n`);
    process.exit(1);
  }
}
