// The package on its own: both entry points, the error's shape, option checks, SigV4 scope derivation.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import * as esm from 'wx-plugin-manager-client';
import { wxServerSdk } from './support/wx-server-sdk.mjs';

const require = createRequire(import.meta.url);
const cjs = require('wx-plugin-manager-client');
const { createCloud, CloudSDKError, signingScope } = esm;

test('ESM and CommonJS entries export the same objects', () => {
  assert.equal(esm.createCloud, cjs.createCloud);
  assert.equal(esm.CloudSDKError, cjs.CloudSDKError);
  assert.deepEqual(Object.keys(cjs).sort(), ['CloudSDKError', 'METHODS', 'createCloud', 'signingScope']);
});

test("CloudSDKError: wx-server-sdk's fields and message, extras not enumerable", () => {
  const e = new CloudSDKError({ errCode: -501007, errMsg: 'openapi.pluginManager.getPluginList:fail invalid parameters: x', errorType: 'InvalidEvent' });
  assert.ok(e instanceof Error);
  assert.deepEqual(Object.keys(e), ['errCode', 'errMsg']);
  assert.equal(e.message, 'errCode: -501007 invalid parameters | errMsg: openapi.pluginManager.getPluginList:fail invalid parameters: x');
  assert.equal(e.errorType, 'InvalidEvent');
  assert.ok(e.stack.includes('errCode: -501007 invalid parameters | errMsg:'));
  const w = new CloudSDKError({ errCode: 89237, errMsg: 'openapi.pluginManager.applyPlugin:fail plugin is already added rid: 1' });
  assert.equal(w.message, 'errCode: 89237  | errMsg: openapi.pluginManager.applyPlugin:fail plugin is already added rid: 1');
});

test("message: wx-server-sdk's text after the code for every code it has one (-1 unknown error, …), none for others", async () => {
  // wx-server-sdk's own CloudSDKError, as it throws it for WeChat's errcode -1.
  const thrown = await wxServerSdk(async () => ({ errcode: -1, errmsg: 'system error' }))
    .unbindPlugin({ action: 'unbind', pluginAppid: 'wxpluginchat0001' })
    .then(() => assert.fail('wx-server-sdk did not throw'), (e) => e);
  assert.equal(thrown.message, 'errCode: -1 unknown error | errMsg: openapi.pluginManager.unbindPlugin:fail system error');
  const ours = new CloudSDKError({ errCode: thrown.errCode, errMsg: thrown.errMsg });
  assert.equal(ours.message, thrown.message);

  // Its class for every negative code down to -700000 (its table's) and WeChat's own positive ones. Both classes
  // compute message from errCode when it is read, so one error of each serves every code.
  const theirs = new thrown.constructor({ errCode: -1, errMsg: 'm' });
  const mine = new CloudSDKError({ errCode: -1, errMsg: 'm' });
  let described = 0;
  for (let errCode = -700000; errCode < 100000; errCode++) {
    if (errCode === 0) continue; // wx-server-sdk turns 0 into -1; no error has it
    theirs.errCode = errCode;
    mine.errCode = errCode;
    if (mine.message !== theirs.message) assert.equal(mine.message, theirs.message, `errCode ${errCode}`);
    if (!theirs.message.startsWith(`errCode: ${errCode}  |`)) described += 1;
  }
  assert.equal(described, 54, 'the codes wx-server-sdk 4.0.2 describes');
});

test('the five methods, and nothing else', () => {
  const cloud = createCloud({ functionName: 'f', lambda: { region: 'ap-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } } });
  assert.deepEqual(Object.keys(cloud.openapi.pluginManager).sort(), ['applyPlugin', 'getPluginDevApplyList', 'getPluginList', 'setDevPluginApplyStatus', 'unbindPlugin']);
});

test('params that cannot be the method\'s call are refused before any call (-501007)', async () => {
  // An endpoint nobody listens on: reaching it would be a -501001, not a -501007.
  const { openapi } = createCloud({ url: 'http://127.0.0.1:9/plugins', retries: 0 });
  const pm = openapi.pluginManager;
  const cases = [
    [pm.getPluginList(), 'getPluginList', "the call's parameters must be an object, with its action"],
    [pm.getPluginList({}), 'getPluginList', 'missing field action (list)'],
    [pm.applyPlugin({ action: 'dev_agree', appid: 'x' }), 'applyPlugin', 'action "dev_agree" is not one of applyPlugin\'s (apply, update); call setDevPluginApplyStatus for dev_agree'],
    [pm.setDevPluginApplyStatus({ action: 'nope' }), 'setDevPluginApplyStatus', 'action "nope" is not one of setDevPluginApplyStatus\'s (dev_agree, dev_refuse, dev_delete)'],
  ];
  for (const [promise, method, detail] of cases) {
    await assert.rejects(promise, (e) => {
      assert.deepEqual({ ...e }, { errCode: -501007, errMsg: `openapi.pluginManager.${method}:fail invalid parameters: ${detail}` });
      assert.equal(e.errorType, 'InvalidEvent');
      return true;
    });
  }
});

test('SigV4 scope from the host: function URL → lambda, API Gateway → execute-api, else options or AWS_REGION', () => {
  assert.deepEqual(signingScope('abc.lambda-url.ap-east-1.on.aws'), { service: 'lambda', region: 'ap-east-1' });
  assert.deepEqual(signingScope('r3pmxmplak.execute-api.eu-west-1.amazonaws.com'), { service: 'execute-api', region: 'eu-west-1' });
  assert.deepEqual(signingScope('x.execute-api.cn-north-1.amazonaws.com.cn'), { service: 'execute-api', region: 'cn-north-1' });
  assert.deepEqual(signingScope('plugins.example.com', { region: 'us-west-2' }), { service: 'execute-api', region: 'us-west-2' });
  assert.deepEqual(signingScope('abc.lambda-url.ap-east-1.on.aws', { service: 'execute-api', region: 'us-east-1' }), { service: 'execute-api', region: 'us-east-1' });
});

test('option checks', () => {
  assert.throws(() => createCloud({}), /functionName/);
  assert.throws(() => createCloud({ functionName: 'f', url: 'https://x' }), /not both/);
  assert.throws(() => createCloud({ url: 'https://x', auth: 'basic' }), /auth is/);
  assert.throws(() => createCloud({ url: 'not a url' }), /not a URL/);
  assert.throws(() => createCloud({ functionName: 'f', retries: -1 }), /retries/);
  assert.throws(() => createCloud({ functionName: 'f', timeoutMs: 0 }), /timeoutMs/);
  const saved = [process.env.AWS_REGION, process.env.AWS_DEFAULT_REGION];
  delete process.env.AWS_REGION;
  delete process.env.AWS_DEFAULT_REGION;
  try {
    assert.throws(() => createCloud({ url: 'https://plugins.example.com/plugins', auth: 'iam' }), /region/);
  } finally {
    if (saved[0] !== undefined) process.env.AWS_REGION = saved[0];
    if (saved[1] !== undefined) process.env.AWS_DEFAULT_REGION = saved[1];
  }
});
