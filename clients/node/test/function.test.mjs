// The client against the real Lambda binary under `cargo lambda watch`, with the WeChat emulator behind it: every
// method's success and error compared with what wx-server-sdk's own code gives for the same call and the same WeChat
// answer, through Lambda Invoke and through an HTTP gateway.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { createCloud, CloudSDKError } from 'wx-plugin-manager-client';
import { FUNCTION, GATEWAY_KEY, freePort, startFixture } from './support/fixture.mjs';
import { startGateway } from './support/gateway.mjs';
import { assertSameAsWxServerSdk, outcome } from './support/wechat.mjs';
import { wxServerSdk } from './support/wx-server-sdk.mjs';

const FAKE = { accessKeyId: 'AKIDNODECLIENTTEST', secretAccessKey: 'node-client-test-secret' };
let fx;
let cloud; // Lambda Invoke, a client created by createCloud
let pm;

before(async () => {
  fx = await startFixture();
  cloud = createCloud({ functionName: FUNCTION, lambda: { endpoint: fx.invokeEndpoint, region: 'ap-east-1', credentials: FAKE } });
  pm = cloud.openapi.pluginManager;
});
after(async () => {
  if (!fx) return;
  await fx.stop();
  if (!process.env.WXPM_NODE_KEEP_LOGS) assert.equal(fs.existsSync(fx.logDir), false, `${fx.logDir} left behind`);
});

const pluginCalls = async () => (await fx.control('GET', 'counters'))['/wxa/plugin'] || 0;
const devpluginCalls = async () => (await fx.control('GET', 'counters'))['/wxa/devplugin'] || 0;

/** A fresh emulator, and the function's token taken again (a reset forgets the tokens it issued). */
async function fresh() {
  await fx.control('DELETE', 'faults');
  await fx.control('POST', 'reset');
  await pm.getPluginList({ action: 'list' });
}

/**
 * One call, both ways, each on a fresh emulator (`prepare` then run on it): wx-server-sdk's own code with the
 * parameters, WeChat Cloud's transport taken by the emulator; then the client's call. The outcomes must be the same.
 */
async function same(method, params, manager = pm, prepare = async () => {}) {
  await fresh();
  await prepare();
  const expected = await outcome(wxServerSdk(fx.emulator)[method](params));
  await fresh();
  await prepare();
  const actual = await outcome(manager[method](params));
  assertSameAsWxServerSdk(actual, expected);
  return { actual, expected };
}

describe('Lambda Invoke: each method as wx-server-sdk answers it', () => {
  test('getPluginList: the list, keys in camelCase, unknown fields kept', async () => {
    const { actual } = await same('getPluginList', { action: 'list' });
    assert.equal(actual.result.errMsg, 'openapi.pluginManager.getPluginList:ok');
    assert.deepEqual(actual.result.pluginList.map((p) => p.status), [2, 1, 3, 4]);
    assert.ok(Array.isArray(actual.result.applyList));
  });

  test('applyPlugin apply: ok, then the plugin is pending', async () => {
    const params = { action: 'apply', pluginAppid: 'wxpluginshop0001', reason: 'We want the storefront kit' };
    await same('applyPlugin', params);
    const list = await pm.getPluginList({ action: 'list' });
    assert.equal(list.pluginList.find((p) => p.appid === 'wxpluginshop0001').status, 1);
  });

  test('applyPlugin apply on an added plugin: 89237', async () => {
    const { actual } = await same('applyPlugin', { action: 'apply', pluginAppid: 'wxpluginchat0001' });
    assert.equal(actual.error.errCode, 89237);
    assert.equal(actual.error.errorType, 'WxApiError');
    assert.ok(actual.error instanceof CloudSDKError);
  });

  test('applyPlugin update with a plain token: 89256', async () => {
    const { actual } = await same('applyPlugin', { action: 'update', pluginAppid: 'wxpluginchat0001', userVersion: '3.1.0' });
    assert.equal(actual.error.errCode, 89256);
    assert.match(actual.error.errMsg, /^openapi\.pluginManager\.applyPlugin:fail /);
  });

  test('unbindPlugin: ok, and the plugin is gone', async () => {
    await same('unbindPlugin', { action: 'unbind', pluginAppid: 'wxpluginchat0001' });
    const list = await pm.getPluginList({ action: 'list' });
    assert.equal(list.pluginList.find((p) => p.appid === 'wxpluginchat0001'), undefined);
  });

  test('unbindPlugin with snake_case plugin_appid (passed through as wx-server-sdk does): ok', async () => {
    await same('unbindPlugin', { action: 'unbind', plugin_appid: 'wxpluginchat0001' });
  });

  test('unbindPlugin on a pending plugin: 89243, WeChat called exactly once', async () => {
    const { actual } = await same('unbindPlugin', { action: 'unbind', pluginAppid: 'wxpluginpay00001' });
    assert.equal(actual.error.errCode, 89243);
    assert.match(actual.error.message, /^errCode: 89243 {2}\| errMsg: openapi\.pluginManager\.unbindPlugin:fail applying plugin can not be unbound rid: /);
    const before = await pluginCalls();
    await assert.rejects(pm.unbindPlugin({ action: 'unbind', pluginAppid: 'wxpluginpay00001' }), { errCode: 89243 });
    assert.equal((await pluginCalls()) - before, 1);
  });

  test('unbindPlugin of a plugin never added: 89244', async () => {
    const { actual } = await same('unbindPlugin', { action: 'unbind', pluginAppid: 'wxpluginshop0001' });
    assert.equal(actual.error.errCode, 89244);
  });

  test('getPluginDevApplyList: applicants with createTime, applyUrl, categories in camelCase', async () => {
    const { actual } = await same('getPluginDevApplyList', { action: 'dev_apply_list', page: 1, num: 10 });
    assert.equal(actual.result.applyList.length, 5);
    const first = actual.result.applyList[0];
    for (const key of ['appid', 'status', 'nickname', 'headimgurl', 'categories', 'createTime', 'applyUrl', 'reason']) assert.ok(key in first, key);
  });

  test("getPluginDevApplyList: the result's JSON text is wx-server-sdk's, its renamed keys after the others", async () => {
    const { actual, expected } = await same('getPluginDevApplyList', { action: 'dev_apply_list', page: 1, num: 10 });
    // WeChat (the emulator) answers …, create_time, apply_url, reason: wx-server-sdk moves the two it renames last.
    assert.deepEqual(Object.keys(expected.result.applyList[0]).slice(-3), ['reason', 'createTime', 'applyUrl']);
    assert.deepEqual(Object.keys(actual.result.applyList[0]), Object.keys(expected.result.applyList[0]));
    assert.equal(JSON.stringify(actual.result), JSON.stringify(expected.result));
  });

  for (const [action, appid, extra, code] of [
    ['dev_agree', 'wxbuyer000000001', {}, 0],
    ['dev_refuse', 'wxbuyer000000005', { reason: 'Your category is not supported yet' }, 0],
    ['dev_delete', 'wxbuyer000000003', {}, 0],
    ['dev_agree', 'wxbuyer000000002', {}, 89240],
    ['dev_delete', 'wxbuyer000000001', {}, 89241],
    ['dev_refuse', 'wxbuyer000000099', { reason: 'no' }, 89242],
  ]) {
    test(`setDevPluginApplyStatus ${action} ${appid}: ${code || 'ok'}`, async () => {
      const { actual } = await same('setDevPluginApplyStatus', { action, appid, ...extra });
      if (code) {
        assert.equal(actual.error.errCode, code);
        assert.match(actual.error.errMsg, /^openapi\.pluginManager\.setDevPluginApplyStatus:fail /);
      } else {
        assert.deepEqual(actual.result, { errMsg: 'openapi.pluginManager.setDevPluginApplyStatus:ok', errCode: 0 });
      }
    });
  }
});

describe('Lambda Invoke: errors', () => {
  test("the function's InvalidEvent (pluginAppId): -501007, the field named, WeChat not called", async () => {
    await fresh();
    const before = await pluginCalls();
    const { error } = await outcome(pm.unbindPlugin({ action: 'unbind', pluginAppId: 'wxpluginchat0001' }));
    assert.deepEqual({ ...error }, {
      errCode: -501007,
      errMsg: 'openapi.pluginManager.unbindPlugin:fail invalid parameters: unknown field pluginAppId; did you mean pluginAppid?',
    });
    assert.equal(error.message, `errCode: -501007 invalid parameters | errMsg: ${error.errMsg}`);
    assert.equal(error.errorType, 'InvalidEvent');
    assert.equal(JSON.stringify(error), JSON.stringify({ errCode: error.errCode, errMsg: error.errMsg }));
    assert.equal(await pluginCalls(), before);
  });

  test("an action of another method (unbindPlugin with action 'list') is refused here, before any call", async () => {
    await fresh();
    const before = await pluginCalls();
    const { error } = await outcome(pm.unbindPlugin({ action: 'list' }));
    assert.equal(error.errCode, -501007);
    assert.equal(error.errMsg, "openapi.pluginManager.unbindPlugin:fail invalid parameters: action \"list\" is not one of unbindPlugin's (unbind); call getPluginList for list");
    assert.equal(error.errorType, 'InvalidEvent');
    assert.equal(await pluginCalls(), before);
  });

  test('WeChat busy (-1) on unbind: WxApiError -1, WeChat called exactly once', async () => {
    await fresh();
    await fx.control('POST', 'faults', { path: '/wxa/plugin', times: 3, fault: { kind: 'errcode', errcode: -1 } });
    const before = await pluginCalls();
    const { error } = await outcome(pm.unbindPlugin({ action: 'unbind', pluginAppid: 'wxpluginchat0001' }));
    assert.equal(error.errCode, -1);
    assert.match(error.errMsg, /^openapi\.pluginManager\.unbindPlugin:fail /);
    assert.equal(error.errorType, 'WxApiError');
    assert.equal((await pluginCalls()) - before, 1);
  });

  test("WeChat busy (-1): message 'errCode: -1 unknown error | errMsg: …' as wx-server-sdk's", async () => {
    const busy = () => fx.control('POST', 'faults', { path: '/wxa/plugin', times: 3, fault: { kind: 'errcode', errcode: -1 } });
    const { actual, expected } = await same('unbindPlugin', { action: 'unbind', pluginAppid: 'wxpluginchat0001' }, pm, busy);
    assert.match(expected.error.message, /^errCode: -1 unknown error \| errMsg: openapi\.pluginManager\.unbindPlugin:fail /);
    assert.equal(actual.error.message, `errCode: -1 unknown error | errMsg: ${actual.error.errMsg}`);
  });

  test('a function name nobody serves: -501001 saying the function was not found, naming it', async () => {
    const nowhere = createCloud({ functionName: 'wx-plugin-manager-nowhere', retries: 0, lambda: { endpoint: fx.invokeEndpoint, region: 'ap-east-1', credentials: FAKE } });
    const { error } = await outcome(nowhere.openapi.pluginManager.getPluginList({ action: 'list' }));
    assert.equal(error.errCode, -501001);
    assert.match(error.errMsg, /^openapi\.pluginManager\.getPluginList:fail resource system error: ResourceNotFoundException \(HTTP 404\): Function not found: wx-plugin-manager-nowhere\b/);
    assert.equal(error.errorType, 'TransportError');
    assert.equal(error.statusCode, 404);
  });

  test('a LambdaClient passed in, with the SDK default of 3 attempts: a failed unbind is still sent once', async () => {
    await fresh();
    const lambda = new LambdaClient({ endpoint: fx.invokeEndpoint, region: 'ap-east-1', credentials: FAKE });
    assert.equal(await lambda.config.maxAttempts(), 3);
    const own = createCloud({ functionName: FUNCTION, lambda }).openapi.pluginManager;
    const before = await pluginCalls();
    const { error } = await outcome(own.unbindPlugin({ action: 'unbind', pluginAppid: 'wxpluginpay00001' }));
    assert.equal(error.errCode, 89243);
    assert.equal(error.errorType, 'WxApiError');
    assert.equal((await pluginCalls()) - before, 1);
    const list = await own.getPluginList({ action: 'list' });
    assert.equal(list.errMsg, 'openapi.pluginManager.getPluginList:ok');
  });

  test('WeChat slower than timeoutMs on a change: -501002 resource server timeout, not sent again', async () => {
    await fresh();
    await fx.control('POST', 'faults', { path: '/wxa/plugin', times: 1, fault: { kind: 'delay', ms: 1500 } });
    const before = await pluginCalls();
    const slow = createCloud({ functionName: FUNCTION, timeoutMs: 300, lambda: { endpoint: fx.invokeEndpoint, region: 'ap-east-1', credentials: FAKE } });
    const { error } = await outcome(slow.openapi.pluginManager.unbindPlugin({ action: 'unbind', pluginAppid: 'wxpluginchat0001' }));
    assert.deepEqual({ ...error }, { errCode: -501002, errMsg: 'openapi.pluginManager.unbindPlugin:fail resource server timeout' });
    assert.equal(error.errorType, 'TransportError');
    await new Promise((r) => setTimeout(r, 1800)); // the function finishes the call WeChat is still holding
    assert.equal((await pluginCalls()) - before, 1);
  });

  test('WeChat slower than timeoutMs on a read: sent again, and answered', async () => {
    await fresh();
    await fx.control('POST', 'faults', { path: '/wxa/devplugin', times: 1, fault: { kind: 'delay', ms: 1500 } });
    const before = await devpluginCalls();
    const slow = createCloud({ functionName: FUNCTION, timeoutMs: 1200, retryDelayMs: 100, lambda: { endpoint: fx.invokeEndpoint, region: 'ap-east-1', credentials: FAKE } });
    const result = await slow.openapi.pluginManager.getPluginDevApplyList({ action: 'dev_apply_list', page: 1, num: 10 });
    assert.equal(result.errMsg, 'openapi.pluginManager.getPluginDevApplyList:ok');
    assert.equal((await devpluginCalls()) - before, 2);
  });

  test('nothing listening: -501001 resource system error, TransportError', async () => {
    const port = await freePort();
    const dead = createCloud({ functionName: FUNCTION, retries: 1, retryDelayMs: 10, lambda: { endpoint: `http://127.0.0.1:${port}`, region: 'ap-east-1', credentials: FAKE } });
    const { error } = await outcome(dead.openapi.pluginManager.unbindPlugin({ action: 'unbind', pluginAppid: 'wxpluginchat0001' }));
    assert.equal(error.errCode, -501001);
    assert.match(error.errMsg, /^openapi\.pluginManager\.unbindPlugin:fail resource system error: .*ECONNREFUSED/);
    assert.equal(error.errorType, 'TransportError');
    assert.ok(error.cause);
  });
});

describe('HTTP gateway (API Gateway HTTP API, payload 2.0)', () => {
  let gateway;
  let signed;
  before(async () => {
    gateway = await startGateway({ invokeEndpoint: fx.invokeEndpoint });
    signed = await startGateway({ invokeEndpoint: fx.invokeEndpoint, iam: { credentials: FAKE, region: 'ap-east-1', service: 'execute-api' } });
  });
  after(async () => {
    await gateway.close();
    await signed.close();
  });
  const bearer = () => createCloud({ url: gateway.url, auth: { bearer: GATEWAY_KEY } }).openapi.pluginManager;

  test('bearer: getPluginList as wx-server-sdk answers it', async () => {
    await same('getPluginList', { action: 'list' }, bearer());
  });

  test('bearer: getPluginDevApplyList as wx-server-sdk answers it', async () => {
    await same('getPluginDevApplyList', { action: 'dev_apply_list', page: 1, num: 2 }, bearer());
  });

  test('bearer: applyPlugin ok, then 89237 (HTTP 409) as wx-server-sdk throws it', async () => {
    await same('applyPlugin', { action: 'apply', pluginAppid: 'wxpluginshop0001' }, bearer());
    const { actual } = await same('applyPlugin', { action: 'apply', pluginAppid: 'wxpluginchat0001' }, bearer());
    assert.equal(actual.error.statusCode, 409);
    assert.equal(actual.error.errorType, 'WxApiError');
  });

  test('bearer: unbindPlugin on a pending plugin: 89243 as over Invoke, WeChat called once', async () => {
    await fresh();
    const before = await pluginCalls();
    const viaHttp = await outcome(bearer().unbindPlugin({ action: 'unbind', pluginAppid: 'wxpluginpay00001' }));
    assert.equal((await pluginCalls()) - before, 1);
    const viaInvoke = await outcome(pm.unbindPlugin({ action: 'unbind', pluginAppid: 'wxpluginpay00001' }));
    assert.equal(viaHttp.error.errCode, 89243);
    assert.equal(viaHttp.error.errMsg.replace(/rid: .*/, ''), viaInvoke.error.errMsg.replace(/rid: .*/, ''));
    assert.equal(viaHttp.error.errorType, 'WxApiError');
    assert.equal(viaHttp.error.statusCode, 409);
  });

  test('bearer: setDevPluginApplyStatus dev_agree ok, then 89240', async () => {
    const m = bearer();
    await same('setDevPluginApplyStatus', { action: 'dev_agree', appid: 'wxbuyer000000001' }, m);
    await assert.rejects(m.setDevPluginApplyStatus({ action: 'dev_agree', appid: 'wxbuyer000000001' }), { errCode: 89240 });
  });

  test("bearer: the function's InvalidEvent (HTTP 400): -501007, errorType InvalidEvent", async () => {
    const { error } = await outcome(bearer().unbindPlugin({ action: 'unbind', pluginAppId: 'wxpluginchat0001' }));
    assert.deepEqual({ ...error }, {
      errCode: -501007,
      errMsg: 'openapi.pluginManager.unbindPlugin:fail invalid parameters: unknown field pluginAppId; did you mean pluginAppid?',
    });
    assert.equal(error.errorType, 'InvalidEvent');
    assert.equal(error.statusCode, 400);
  });

  test('a wrong bearer key: HTTP 401, -401, errMsg naming the called method', async () => {
    const m = createCloud({ url: gateway.url, auth: { bearer: 'not-the-key' } }).openapi.pluginManager;
    const { error } = await outcome(m.getPluginList({ action: 'list' }));
    assert.equal(error.errCode, -401);
    assert.match(error.errMsg, /^openapi\.pluginManager\.getPluginList:fail unauthorized: /);
    assert.equal(error.errorType, 'HttpRefused');
    assert.equal(error.statusCode, 401);
  });

  test('iam: SigV4-signed (execute-api), checked by the gateway, answered as over Invoke', async () => {
    const m = createCloud({ url: signed.url, auth: 'iam', region: 'ap-east-1', credentials: FAKE }).openapi.pluginManager;
    await same('getPluginList', { action: 'list' }, m);
    await same('unbindPlugin', { action: 'unbind', pluginAppid: 'wxpluginpay00001' }, m);
  });

  test('iam with the wrong secret: the gateway refuses (403), -403 HttpRefused', async () => {
    const m = createCloud({ url: signed.url, auth: 'iam', region: 'ap-east-1', credentials: { ...FAKE, secretAccessKey: 'wrong' } }).openapi.pluginManager;
    const { error } = await outcome(m.getPluginList({ action: 'list' }));
    assert.equal(error.errCode, -403);
    assert.match(error.errMsg, /^openapi\.pluginManager\.getPluginList:fail HTTP 403: The request signature/);
    assert.equal(error.errorType, 'HttpRefused');
  });

  test("the gateway's own 503: a read is sent again (up to retries), a change is not", async () => {
    const m = createCloud({ url: gateway.url, auth: { bearer: GATEWAY_KEY }, retries: 2, retryDelayMs: 10 }).openapi.pluginManager;
    await fresh();
    gateway.state.failNext = 2;
    let hits = gateway.state.hits;
    const list = await m.getPluginList({ action: 'list' });
    assert.equal(list.errCode, 0);
    assert.equal(gateway.state.hits - hits, 3);

    gateway.state.failNext = 1;
    hits = gateway.state.hits;
    const before = await pluginCalls();
    const { error } = await outcome(m.unbindPlugin({ action: 'unbind', pluginAppid: 'wxpluginchat0001' }));
    assert.deepEqual({ ...error }, { errCode: -501001, errMsg: 'openapi.pluginManager.unbindPlugin:fail resource system error: HTTP 503: Service Unavailable' });
    assert.equal(error.errorType, 'TransportError');
    assert.equal(gateway.state.hits - hits, 1);
    assert.equal(await pluginCalls(), before);

    gateway.state.failNext = 3;
    const { error: exhausted } = await outcome(m.getPluginList({ action: 'list' }));
    assert.equal(exhausted.errCode, -501001);
    gateway.state.failNext = 0;
  });
});
