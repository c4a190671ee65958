// A stand-in for an API Gateway HTTP API (payload 2.0) in front of the function: it turns the POST into the event
// of events/http-api-*.json, invokes the function through `cargo lambda watch`'s Invoke API, and answers with the
// function's gateway response. With `iam`, it checks the SigV4 signature first (as API Gateway does) and sends
// the IAM-authorised event; a wrong signature is answered 403 as API Gateway answers it.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { FUNCTION, ROOT } from './fixture.mjs';

const template = (name) => JSON.parse(fs.readFileSync(path.join(ROOT, 'events', name), 'utf8'));

/** Recompute the request's signature with the caller's (test) credentials over exactly the signed headers. */
async function signatureMatches(req, body, { credentials, region, service }) {
  const auth = req.headers.authorization || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]+)$/.exec(auth);
  if (!m || m[1] !== credentials.accessKeyId || m[3] !== region || m[4] !== service) return false;
  const signed = m[5].split(';');
  const headers = {};
  for (const name of signed) headers[name] = req.headers[name];
  const amzDate = req.headers['x-amz-date'];
  const signingDate = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  const url = new URL(req.url, `http://${req.headers.host}`);
  const signer = new SignatureV4({ credentials, region, service, sha256: Sha256, applyChecksum: true });
  const again = await signer.sign(
    { method: req.method, protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, query: Object.fromEntries(url.searchParams), headers, body },
    { signingDate },
  );
  return again.headers.authorization === auth;
}

export async function startGateway({ invokeEndpoint, iam }) {
  const state = { hits: 0, failNext: 0 };
  const server = http.createServer(async (req, res) => {
    state.hits += 1;
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString('utf8');
    if (state.failNext > 0) {
      state.failNext -= 1;
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"message":"Service Unavailable"}');
      return;
    }
    let event;
    if (iam) {
      if (!(await signatureMatches(req, body, iam))) {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end('{"message":"The request signature we calculated does not match the signature you provided."}');
        return;
      }
      event = template('http-api-iam.json');
    } else {
      event = template('http-api-anonymous.json');
    }
    const url = new URL(req.url, 'http://gateway');
    event.rawPath = url.pathname;
    event.rawQueryString = url.search.slice(1);
    event.headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v]));
    event.requestContext.http.method = req.method;
    event.requestContext.http.path = url.pathname;
    event.body = body;
    event.isBase64Encoded = false;
    const invoked = await fetch(`${invokeEndpoint}/2015-03-31/functions/${FUNCTION}/invocations`, { method: 'POST', body: JSON.stringify(event) });
    const reply = await invoked.json();
    if (invoked.status !== 200 || typeof reply.statusCode !== 'number') {
      res.writeHead(502, { 'content-type': 'application/json' }).end('{"message":"Internal Server Error"}');
      return;
    }
    const text = reply.isBase64Encoded ? Buffer.from(reply.body, 'base64').toString('utf8') : reply.body;
    res.writeHead(reply.statusCode, reply.headers || {}).end(text);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/plugins`,
    state,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
