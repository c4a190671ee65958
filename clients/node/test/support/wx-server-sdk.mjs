// wx-server-sdk 4.0.2 itself (a devDependency), run here offline. Its cloud.openapi.pluginManager.* goes through
// WeChat Cloud's transport, the CloudBase instance's callCompatibleWxOpenApi; that one method is replaced by a
// stand-in that does what WeChat Cloud does with the call: it sends the parameters wx-server-sdk encoded to WeChat
// (here the emulator, with the demo mini program's token) and hands WeChat's answer back in the envelope
// wx-server-sdk decodes. Everything else — the parameters' keys, reading the answer, the result's keys and their
// order, the error it throws and its message — is wx-server-sdk's own code.
import { createRequire } from 'node:module';
import { DEMO } from './fixture.mjs';

const require = createRequire(import.meta.url);
const cloud = require('wx-server-sdk');
// The CloudBase SDK that wx-server-sdk itself loads, resolved from its own folder.
const tcb = createRequire(require.resolve('wx-server-sdk'))('@cloudbase/node-sdk');

/** WeChat's endpoint for each method, as WeChat Cloud routes `pluginManager.<method>`. */
const PATHS = {
  applyPlugin: '/wxa/plugin',
  getPluginList: '/wxa/plugin',
  unbindPlugin: '/wxa/plugin',
  getPluginDevApplyList: '/wxa/devplugin',
  setDevPluginApplyStatus: '/wxa/devplugin',
};

// Protocol Buffers, only as far as these two messages need: CommApiData { 2: OpenApiData { 1: repeated
// KeyValuePair { 1: key, 2: value (JSON text) } } } in, CommOpenApiResp { 1: respData, 2: contentType } out.
function* fields(buf) {
  let at = 0;
  const varint = () => {
    let n = 0;
    for (let shift = 0; ; shift += 7) {
      const b = buf[at++];
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
    }
  };
  while (at < buf.length) {
    const tag = varint();
    const wire = tag & 7;
    if (wire === 0) yield [tag >>> 3, varint()];
    else if (wire === 2) {
      const len = varint();
      yield [tag >>> 3, buf.subarray(at, at + len)];
      at += len;
    } else throw new Error(`wire type ${wire} is not used by these messages`);
  }
}

function wechatBody(requestData) {
  const body = {};
  for (const [field, openapiData] of fields(requestData)) {
    if (field !== 2) continue;
    for (const [pairField, pair] of fields(openapiData)) {
      if (pairField !== 1) continue;
      let key;
      let value;
      for (const [n, bytes] of fields(pair)) {
        if (n === 1) key = bytes.toString('utf8');
        if (n === 2) value = JSON.parse(bytes.toString('utf8'));
      }
      body[key] = value;
    }
  }
  return body;
}

function lengthDelimited(field, bytes) {
  const len = [];
  for (let n = bytes.length; ; n >>>= 7) {
    if (n < 0x80) {
      len.push(n);
      break;
    }
    len.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...len]), bytes]);
}

/** What answers the calls: `(method, body) => Promise<{ contentType, body: Buffer }>`. */
let answer;

// A CloudBase instance, when created, asks Tencent Cloud's metadata host whether it runs on Tencent Cloud, unless
// TENCENTCLOUD=true says so (read before its first await). Said so while the two are created: no lookup leaves
// this machine, and nothing here uses the answer.
const { TENCENTCLOUD } = process.env;
process.env.TENCENTCLOUD = 'true';
let CloudBase;
try {
  CloudBase = Object.getPrototypeOf(tcb.init({ env: 'wxpm-test' }));
  cloud.init({ env: 'wxpm-test' });
} finally {
  if (TENCENTCLOUD === undefined) delete process.env.TENCENTCLOUD;
  else process.env.TENCENTCLOUD = TENCENTCLOUD;
}
CloudBase.callCompatibleWxOpenApi = async function weChatCloud({ apiName, requestData }) {
  const reply = await answer(apiName.replace(/^pluginManager\./, ''), wechatBody(requestData));
  return Buffer.concat([lengthDelimited(1, reply.body), lengthDelimited(2, Buffer.from(reply.contentType))]);
};

/** WeChat at `emulator`, asked with the demo mini program's token. */
const askEmulator = (emulator) => async (method, body) => {
  const tokenRes = await fetch(`${emulator}/cgi-bin/stable_token`, {
    method: 'POST',
    body: JSON.stringify({ grant_type: 'client_credential', appid: DEMO.appid, secret: DEMO.secret, force_refresh: false }),
  });
  const { access_token: token } = await tokenRes.json();
  const res = await fetch(`${emulator}${PATHS[method]}?access_token=${encodeURIComponent(token)}`, { method: 'POST', body: JSON.stringify(body) });
  return { contentType: res.headers.get('content-type') || 'application/json', body: Buffer.from(await res.arrayBuffer()) };
};

/**
 * wx-server-sdk's `cloud.openapi.pluginManager`, its calls answered by the emulator at a URL, or by a function
 * `(method, wechatBody) => WeChat's answer as an object`.
 */
export function wxServerSdk(wechat) {
  answer =
    typeof wechat === 'string'
      ? askEmulator(wechat)
      : async (method, body) => ({ contentType: 'application/json', body: Buffer.from(JSON.stringify(await wechat(method, body))) });
  return cloud.openapi.pluginManager;
}
