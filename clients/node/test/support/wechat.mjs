// What wx-server-sdk would give for a WeChat answer (the spec's A4), and WeChat's answer itself, asked of the
// emulator directly with the demo mini program's token.
import assert from 'node:assert/strict';
import { DEMO } from './fixture.mjs';

const camel = (key) => key.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
function camelKeys(value) {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [camel(k), camelKeys(v)]));
  }
  return value;
}

/** wx-server-sdk's outcome for WeChat's answer: `{ result }` or `{ error: { errCode, errMsg } }`. */
export function wxServerSdk(method, answer) {
  const { errcode, errmsg, ...rest } = answer;
  if (errcode === undefined || errcode === 0) {
    return { result: { ...camelKeys(rest), errMsg: `openapi.pluginManager.${method}:ok`, errCode: 0 } };
  }
  return { error: { errCode: errcode, errMsg: `openapi.pluginManager.${method}:fail ${errmsg}` } };
}

/** WeChat's answer to `body` on `path`, from the emulator. */
export async function askWechat(emulator, path, body) {
  const tokenRes = await fetch(`${emulator}/cgi-bin/stable_token`, {
    method: 'POST',
    body: JSON.stringify({ grant_type: 'client_credential', appid: DEMO.appid, secret: DEMO.secret, force_refresh: false }),
  });
  const { access_token: token } = await tokenRes.json();
  const res = await fetch(`${emulator}${path}?access_token=${encodeURIComponent(token)}`, { method: 'POST', body: JSON.stringify(body) });
  return res.json();
}

const RID = / rid: [0-9a-zA-Z-]+$/;
const withoutRid = (msg) => msg.replace(RID, ' rid: <rid>');

/** The client's outcome of `promise`: `{ result }` or `{ error }`. */
export async function outcome(promise) {
  try {
    return { result: await promise };
  } catch (error) {
    return { error };
  }
}

/**
 * The client's outcome equals wx-server-sdk's: a result deep-equal; an error with the same errCode and errMsg
 * (WeChat's varying ` rid: …` aside), nothing else enumerable, and `message` in CloudSDKError's format.
 */
export function assertSameAsWxServerSdk(actual, expected) {
  if (expected.result) {
    assert.ok(actual.result, `expected a result, got ${actual.error && actual.error.message}`);
    assert.deepEqual(actual.result, expected.result);
    return;
  }
  assert.ok(actual.error, `expected an error, got ${JSON.stringify(actual.result)}`);
  const { error } = actual;
  assert.ok(error instanceof Error);
  assert.deepEqual(Object.keys(error).sort(), ['errCode', 'errMsg']);
  assert.equal(error.errCode, expected.error.errCode);
  assert.equal(withoutRid(error.errMsg), withoutRid(expected.error.errMsg));
  if (RID.test(expected.error.errMsg)) assert.match(error.errMsg, RID);
  assert.match(error.message, /^errCode: -?\d+ [^|]*\| errMsg: /);
  assert.ok(error.message.endsWith(`| errMsg: ${error.errMsg}`));
}
