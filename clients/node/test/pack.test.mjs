// The package as a user gets it from this repository before it is on a registry: `npm pack`, then the tarball
// installed into an empty project offline (the AWS SDK pieces are optional peers, so nothing else is fetched), then
// loaded with require and import. Everything happens in one temp folder, removed afterwards.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CLIENT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(command, args, cwd) {
  const out = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  assert.equal(out.status, 0, `${command} ${args.join(' ')} failed:\n${out.stdout}\n${out.stderr}`);
  return out.stdout;
}

test('npm pack gives a package that installs offline and loads with require and import', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxpm-node-pack-'));
  try {
    const [packed] = JSON.parse(run(npm, ['pack', '--json', '--pack-destination', dir], CLIENT));
    assert.deepEqual(packed.files.map((f) => f.path).sort(), ['README.md', 'index.d.mts', 'index.d.ts', 'index.mjs', 'lib/index.cjs', 'package.json']);
    const tarball = path.join(dir, packed.filename);

    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    run(npm, ['install', '--offline', '--no-audit', '--no-fund', tarball], app);
    const installed = JSON.parse(fs.readFileSync(path.join(app, 'package.json'), 'utf8')).dependencies;
    assert.match(installed['wx-plugin-manager-client'], /^file:/);
    assert.deepEqual(fs.readdirSync(path.join(app, 'node_modules')).filter((n) => !n.startsWith('.')), ['wx-plugin-manager-client']);

    // CommonJS: the exports, an HTTP client (no peer needed), and the Lambda transport naming its missing peer.
    const cjs = run(process.execPath, ['-e', `
      const m = require('wx-plugin-manager-client');
      const cloud = m.createCloud({ url: 'https://plugins.example.com/plugins', auth: { bearer: 'k' } });
      let peer = '';
      try { m.createCloud({ functionName: 'f' }); } catch (e) { peer = e.message; }
      console.log(JSON.stringify({ keys: Object.keys(m).sort(), methods: Object.keys(cloud.openapi.pluginManager).length,
        message: new m.CloudSDKError({ errCode: -1, errMsg: 'x' }).message, peer }));
    `], app);
    assert.deepEqual(JSON.parse(cjs), {
      keys: ['CloudSDKError', 'METHODS', 'createCloud', 'signingScope'],
      methods: 5,
      message: 'errCode: -1 unknown error | errMsg: x',
      peer: 'wx-plugin-manager-client: the Lambda transport needs the peer dependency @aws-sdk/client-lambda: npm install @aws-sdk/client-lambda',
    });

    // ESM: the same objects as require gives.
    const esm = run(process.execPath, ['--input-type=module', '-e', `
      import { createRequire } from 'node:module';
      import { createCloud, CloudSDKError } from 'wx-plugin-manager-client';
      const cjs = createRequire(process.cwd() + '/')('wx-plugin-manager-client');
      console.log(JSON.stringify({ same: createCloud === cjs.createCloud && CloudSDKError === cjs.CloudSDKError }));
    `], app);
    assert.deepEqual(JSON.parse(esm), { same: true });

    for (const types of ['index.d.ts', 'index.d.mts']) {
      assert.ok(fs.existsSync(path.join(app, 'node_modules', 'wx-plugin-manager-client', types)), types);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(fs.existsSync(dir), false);
});
