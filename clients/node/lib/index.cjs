'use strict';
// wx-plugin-manager-client: wx-server-sdk's `cloud.openapi.pluginManager.*` on top of the wx-plugin-manager Lambda
// function, through Lambda Invoke or an HTTP gateway (API Gateway, a function URL, an ALB).
// One CommonJS implementation; index.mjs re-exports it for ESM, so both share one CloudSDKError class.

/** The methods, each with the actions it may carry (the function names the method in errMsg from the action). */
const METHODS = Object.freeze({
  applyPlugin: Object.freeze(['apply', 'update']),
  getPluginList: Object.freeze(['list']),
  unbindPlugin: Object.freeze(['unbind']),
  getPluginDevApplyList: Object.freeze(['dev_apply_list']),
  setDevPluginApplyStatus: Object.freeze(['dev_agree', 'dev_refuse', 'dev_delete']),
});
/** Reads: safe to send again after a transport failure. Everything else changes state and is sent at most once. */
const READS = new Set(['list', 'dev_apply_list']);

const PREFIX = 'openapi.pluginManager';
/**
 * The text wx-server-sdk's CloudSDKError puts after the code in `message`, for each code its table describes (4.0.2;
 * `%s` as it leaves it); no text for any other code (WeChat's own, such as 89243). -602018, not -601018, is the key
 * it gives "unauthorized API".
 */
const ERR_CODE = Object.freeze({
  '-1': 'unknown error',
  '-404001': 'empty call result',
  '-404002': 'empty event id',
  '-404003': 'empty poll url',
  '-404004': 'empty poll result json',
  '-404005': 'exceed max poll retry',
  '-404006': 'empty poll result base resp',
  '-404007': 'error while polling for the result, poll result base resp ret %s',
  '-404008': 'error while polling for the result, polling server return a status code of %s',
  '-404009': 'error while polling for the result: %s',
  '-501001': 'resource system error',
  '-501002': 'resource server timeout',
  '-501003': 'exceed request limit',
  '-501004': 'exceed concurrent request limit',
  '-501005': 'invalid env',
  '-501006': 'invalid common parameters',
  '-501007': 'invalid parameters',
  '-501008': 'invalid request source',
  '-501009': 'resource not initialized',
  '-502001': 'database request fail',
  '-502002': 'database invalid command',
  '-502003': 'database permission denied',
  '-502004': 'database exceed collection limit',
  '-502005': 'database collection not exists',
  '-503001': 'storage request fail',
  '-503002': 'storage permission denied',
  '-503003': 'storage file not exists',
  '-503004': 'storage invalid sign parameter',
  '-504001': 'functions request fail',
  '-504002': 'functions execute fail',
  '-601001': 'system error',
  '-601002': 'system args error',
  '-601003': 'system network error',
  '-601004': 'api permission denied',
  '-601005': 'invalid cloudID',
  '-601006': 'cloudID expired',
  '-601007': 'cloudID and calling user does not match',
  '-601008': 'server-side request timedout',
  '-601009': 'missing mobile phone',
  '-601010': 'no write permission',
  '-601011': 'no privilege permission',
  '-601012': 'unauthorized env',
  '-601013': 'no multiend permission',
  '-601015': 'access denied (cloudfunction cloudbase_auth returns empty errCode)',
  '-601016': 'missing env auth info',
  '-601017': 'access denied (cloudbase_auth returns non-zero errCode)',
  '-602001': 'database query result size exceed limit (1MB)',
  '-602018': 'unauthorized API',
  '-604001': 'cloudfunction result size exceed limit (1MB)',
  '-604100': 'API not found',
  '-604101': 'function has no permission to call this API',
  '-604102': 'call open API timeout',
  '-604103': 'call open API system error',
  '-604104': 'illegal source of invocation',
});

const DEFAULTS = Object.freeze({ timeoutMs: 15000, retries: 2, retryDelayMs: 200 });

/**
 * The error wx-server-sdk throws: own enumerable fields exactly `errCode` and `errMsg`, and `message`
 * `errCode: <code> <text of wx-server-sdk's own codes> | errMsg: <errMsg>`. What this client adds (`errorType`,
 * `requestId`, `statusCode`, and `cause` for a transport failure) is not enumerable, so JSON.stringify(error)
 * and {...error} are what they are for wx-server-sdk's error.
 */
class CloudSDKError extends Error {
  constructor({ errCode, errMsg, errorType, requestId, statusCode, cause }) {
    super(undefined, cause === undefined ? undefined : { cause });
    this.errCode = errCode;
    this.errMsg = errMsg;
    const extra = { errorType, requestId, statusCode };
    for (const [key, value] of Object.entries(extra)) {
      if (value !== undefined) Object.defineProperty(this, key, { value, writable: true, configurable: true });
    }
    Object.defineProperty(this, 'message', {
      get() {
        return `errCode: ${this.errCode} ${ERR_CODE[this.errCode] || ''} | errMsg: ${this.errMsg}`;
      },
      set(msg) {
        this.errMsg = msg;
      },
      configurable: true,
    });
    // The stack's first line was taken before errCode/errMsg were set: take it again.
    if (Error.captureStackTrace) Error.captureStackTrace(this, CloudSDKError);
  }
}

/** A failure to get any answer from the function (or its gateway): mapped to -501001 / -501002 at the end. */
class TransportFailure extends Error {
  constructor(detail, { timeout = false, unsent = false, retryable = false, statusCode, cause } = {}) {
    super(detail, cause === undefined ? undefined : { cause });
    this.timeout = timeout;
    this.unsent = unsent;
    this.retryable = retryable;
    this.statusCode = statusCode;
  }
}

/** Socket errors raised before the request left this machine: nothing reached the function. */
const UNSENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
function errorCodeIn(error) {
  for (let e = error, depth = 0; e && depth < 8; e = e.cause, depth++) {
    if (typeof e.code === 'string') return e.code;
    if (e.errors && e.errors[0] && typeof e.errors[0].code === 'string') return e.errors[0].code; // AggregateError
  }
  return undefined;
}

function requirePeer(name, why) {
  try {
    return require(name);
  } catch (e) {
    if (e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(name)) {
      throw new Error(`wx-plugin-manager-client: ${why} needs the peer dependency ${name}: npm install ${name}`);
    }
    throw e;
  }
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const parseJson = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};
const snippet = (text) => (text.length > 200 ? `${text.slice(0, 200)}…` : text);

/** The function's errMsg, naming the called method where the function could not (edge refusals, configuration). */
function namedErrMsg(method, errMsg) {
  return errMsg.startsWith(`${PREFIX}:fail`) ? `${PREFIX}.${method}${errMsg.slice(PREFIX.length)}` : errMsg;
}

function invalid(method, detail) {
  return new CloudSDKError({
    errCode: -501007,
    errMsg: `${PREFIX}.${method}:fail invalid parameters: ${detail}`,
    errorType: 'InvalidEvent',
  });
}

/** Refuse, before any call, what cannot be this method's call. Everything else is for the function to judge. */
function checkParams(method, params) {
  if (!isObject(params)) throw invalid(method, "the call's parameters must be an object, with its action");
  const allowed = METHODS[method];
  const { action } = params;
  if (action === undefined) throw invalid(method, `missing field action (${allowed.join(', ')})`);
  if (!allowed.includes(action)) {
    const owner = Object.keys(METHODS).find((m) => METHODS[m].includes(action));
    const hint = owner ? `; call ${owner} for ${action}` : '';
    throw invalid(method, `action ${JSON.stringify(action)} is not one of ${method}'s (${allowed.join(', ')})${hint}`);
  }
  return action;
}

// ---------------------------------------------------------------------------------------------------------------
// Answers: what a transport hands back, normalised to { result } or { errCode, errMsg, errorType }
// ---------------------------------------------------------------------------------------------------------------

/** The Lambda error object `{errorType, errorMessage}`, its message the JSON text of `{errCode, errMsg}`. */
function fromFunctionError(method, errorType, errorMessage) {
  const inner = typeof errorMessage === 'string' ? parseJson(errorMessage) : undefined;
  if (isObject(inner) && Number.isInteger(inner.errCode) && typeof inner.errMsg === 'string') {
    return { errCode: inner.errCode, errMsg: inner.errMsg, errorType: errorType || 'FunctionError' };
  }
  // Not one of ours: Lambda's own (a timeout, a crash, an init failure).
  const text = `${errorType || 'FunctionError'}: ${errorMessage === undefined ? '' : String(errorMessage)}`;
  if (/timed ?out/i.test(String(errorType)) || /timed out/i.test(String(errorMessage))) {
    return { errCode: -501002, errMsg: `${PREFIX}.${method}:fail resource server timeout`, errorType: errorType || 'Timeout' };
  }
  return { errCode: -601001, errMsg: `${PREFIX}.${method}:fail system error: ${snippet(text)}`, errorType: errorType || 'FunctionError' };
}

function fromResultText(method, text) {
  const result = parseJson(text);
  if (isObject(result) && result.errCode === 0 && typeof result.errMsg === 'string') return { result };
  return {
    errCode: -601001,
    errMsg: `${PREFIX}.${method}:fail system error: not a result of the function: ${snippet(text)}`,
    errorType: 'InvalidResponse',
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Transport 1: Lambda Invoke
// ---------------------------------------------------------------------------------------------------------------

/**
 * Thrown inside the SDK's retry loop so that it never sends the call again (no $retryable, $metadata, code or cause
 * for the SDK to classify as retryable); unwrapped around `send`.
 */
const NO_SDK_RETRY = 'WxPluginManagerNoSdkRetry';
class NoSdkRetry extends Error {
  constructor(original) {
    super('wrapped so that the SDK does not retry it');
    this.name = NO_SDK_RETRY;
    this.original = original;
  }
}
const noSdkRetry = (next) => async (args) => {
  try {
    return await next(args);
  } catch (e) {
    throw new NoSdkRetry(e);
  }
};

function lambdaTransport({ functionName, qualifier, lambda }) {
  if (typeof functionName !== 'string' || functionName === '') {
    throw new TypeError('wx-plugin-manager-client: createCloud needs functionName (or url)');
  }
  const sdk = requirePeer('@aws-sdk/client-lambda', 'the Lambda transport');
  // A client we create never retries at the SDK level; our own loop decides (reads only, see call()).
  const client = lambda && typeof lambda.send === 'function' ? lambda : new sdk.LambdaClient({ ...(lambda || {}), maxAttempts: 1 });
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();

  return async function invoke(method, event, signal) {
    const command = new sdk.InvokeCommand({
      FunctionName: functionName,
      Qualifier: qualifier,
      InvocationType: 'RequestResponse',
      Payload: encoder.encode(JSON.stringify(event)),
    });
    // Inside the SDK's retry middleware (finalizeRequest, high): a passed-in client's own retries never resend it.
    command.middlewareStack.add(noSdkRetry, { step: 'finalizeRequest', priority: 'low', name: 'wxPluginManagerNoSdkRetry' });
    let out;
    try {
      out = await client.send(command, { abortSignal: signal });
    } catch (thrown) {
      const error = thrown && thrown.name === NO_SDK_RETRY && 'original' in thrown ? thrown.original : thrown;
      const requestId = error && error.$metadata && error.$metadata.requestId;
      // A local emulator (cargo lambda watch) answers a function error with HTTP 500 and the error object as the
      // body; the SDK throws it with the body's fields copied onto the exception.
      if (error && typeof error.errorType === 'string' && typeof error.errorMessage === 'string') {
        return { ...fromFunctionError(method, error.errorType, error.errorMessage), requestId };
      }
      throw lambdaFailure(error, signal, qualifier ? `${functionName}:${qualifier}` : functionName);
    }
    const text = out.Payload ? decoder.decode(out.Payload) : '';
    const requestId = out.$metadata && out.$metadata.requestId;
    if (out.FunctionError) {
      const body = parseJson(text);
      const answer = isObject(body)
        ? fromFunctionError(method, body.errorType, body.errorMessage)
        : fromFunctionError(method, out.FunctionError, text);
      return { ...answer, requestId, statusCode: out.StatusCode };
    }
    return { ...fromResultText(method, text), requestId, statusCode: out.StatusCode };
  };
}

function lambdaFailure(error, signal, target) {
  const name = (error && error.name) || 'Error';
  const status = error && error.$metadata && error.$metadata.httpStatusCode;
  let detail = `${name}${status ? ` (HTTP ${status})` : ''}: ${(error && error.message) || String(error)}`;
  // Invoke answers 404 only for a function (or version, alias) that does not exist. Lambda names it
  // ResourceNotFoundException; a local endpoint such as `cargo lambda watch` answers a bare 404, which the SDK calls
  // "Unknown: UnknownError" with the reason in fields of its own: say what Lambda would, and keep those.
  if (status === 404 && name !== 'ResourceNotFoundException') {
    const reason = [error.title, error.detail].filter((v) => typeof v === 'string' && v !== '').join(': ');
    detail = `ResourceNotFoundException (HTTP 404): Function not found: ${target}${reason ? ` (${reason})` : ''}`;
  }
  if ((signal && signal.aborted) || name === 'AbortError' || name === 'TimeoutError') {
    return new TransportFailure('timeout', { timeout: true, retryable: true, cause: error });
  }
  const code = errorCodeIn(error);
  if (code && UNSENT_CODES.has(code)) return new TransportFailure(detail, { unsent: true, retryable: true, cause: error });
  // Throttled (429) or a Lambda service fault (5xx): the function did not answer; a read may ask again.
  // Anything else (403 denied, 404 no such function, 400 bad request) would fail the same way again.
  const retryable = status === undefined || status === 429 || status >= 500;
  return new TransportFailure(detail, { retryable, statusCode: status, cause: error });
}

// ---------------------------------------------------------------------------------------------------------------
// Transport 2: HTTP gateway (API Gateway REST / HTTP API, function URL, ALB)
// ---------------------------------------------------------------------------------------------------------------

/** The SigV4 service and region a gateway host implies: function URLs `lambda`, everything else `execute-api`. */
function signingScope(hostname, { service, region } = {}) {
  const host = hostname.toLowerCase();
  const url = /\.lambda-url\.([a-z0-9-]+)\.on\.aws$/.exec(host);
  const api = /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/.exec(host);
  const derived = url ? { service: 'lambda', region: url[1] } : api ? { service: 'execute-api', region: api[1] } : {};
  return {
    service: service || derived.service || 'execute-api',
    region: region || derived.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION,
  };
}

/** errorType for a gateway's `{errCode, errMsg}` body, which carries none: from the status and the errMsg. */
function httpErrorType(status, errCode, errMsg) {
  if (errCode === -501007) return 'InvalidEvent';
  if (errCode === -status) return 'HttpRefused';
  if (errMsg.includes(':fail cannot get access_token')) return 'TokenError';
  if (errMsg.includes(':fail configuration error')) return 'ConfigError';
  if (errCode === -501001 || errCode === -501002 || errCode === -601001 || errCode < -600000) return 'UpstreamError';
  return 'WxApiError';
}

function httpTransport({ url, auth, region, service, credentials, headers: extraHeaders }) {
  let target;
  try {
    target = new URL(url);
  } catch {
    throw new TypeError(`wx-plugin-manager-client: url is not a URL: ${url}`);
  }
  if (target.protocol !== 'https:' && target.protocol !== 'http:') {
    throw new TypeError('wx-plugin-manager-client: url must be http(s)');
  }
  let sign;
  if (auth === 'iam') {
    const scope = signingScope(target.hostname, { service, region });
    if (!scope.region) {
      throw new TypeError(`wx-plugin-manager-client: IAM signing needs a region: pass region, or set AWS_REGION (${target.hostname} names none)`);
    }
    const { SignatureV4 } = requirePeer('@smithy/signature-v4', 'IAM signing');
    const { Sha256 } = requirePeer('@aws-crypto/sha256-js', 'IAM signing');
    const creds = credentials || requirePeer('@aws-sdk/credential-provider-node', 'IAM signing without credentials').defaultProvider();
    const signer = new SignatureV4({ service: scope.service, region: scope.region, credentials: creds, sha256: Sha256, applyChecksum: true });
    sign = async (headers, body) => {
      const query = {};
      for (const [k, v] of target.searchParams) query[k] = v;
      const signed = await signer.sign({
        method: 'POST',
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port ? Number(target.port) : undefined,
        path: target.pathname,
        query,
        headers: { ...headers, host: target.host },
        body,
      });
      const out = { ...signed.headers };
      delete out.host; // fetch sends the same Host from the URL
      return out;
    };
  } else if (isObject(auth) && typeof auth.bearer === 'string' && auth.bearer !== '') {
    sign = async (headers) => ({ ...headers, authorization: `Bearer ${auth.bearer}` });
  } else if (auth === undefined || auth === 'none') {
    sign = async (headers) => headers;
  } else {
    throw new TypeError("wx-plugin-manager-client: auth is 'iam', { bearer: '<key>' } or 'none'");
  }

  return async function post(method, event, signal) {
    const body = JSON.stringify(event);
    const headers = await sign({ ...(extraHeaders || {}), 'content-type': 'application/json' }, body);
    let res;
    let text;
    try {
      res = await fetch(target, { method: 'POST', headers, body, signal, redirect: 'error' });
      text = await res.text();
    } catch (error) {
      if ((signal && signal.aborted) || (error && (error.name === 'TimeoutError' || error.name === 'AbortError'))) {
        throw new TransportFailure('timeout', { timeout: true, retryable: true, cause: error });
      }
      const code = errorCodeIn(error);
      const detail = `${code || (error && error.name) || 'Error'}: ${(error && error.cause && error.cause.message) || (error && error.message)}`;
      throw new TransportFailure(detail, { unsent: Boolean(code && UNSENT_CODES.has(code)), retryable: true, cause: error });
    }
    const status = res.status;
    const requestId = res.headers.get('x-amzn-requestid') || res.headers.get('apigw-requestid') || undefined;
    const parsed = parseJson(text);
    if (isObject(parsed) && Number.isInteger(parsed.errCode) && typeof parsed.errMsg === 'string') {
      // The function's own answer (a result, or wx-server-sdk's {errCode, errMsg} with the status its kind maps to).
      if (status >= 200 && status < 300 && parsed.errCode === 0) return { result: parsed, requestId, statusCode: status };
      if (parsed.errCode !== 0) {
        return { errCode: parsed.errCode, errMsg: parsed.errMsg, errorType: httpErrorType(status, parsed.errCode, parsed.errMsg), requestId, statusCode: status };
      }
    }
    // The gateway's own answer: it did not get one from the function (throttled, timed out, failed, refused).
    const message = isObject(parsed) && (parsed.message || parsed.Message) ? String(parsed.message || parsed.Message) : snippet(text);
    if (status === 504) throw new TransportFailure(`HTTP 504: ${message}`, { timeout: true, retryable: true, statusCode: status });
    if (status === 429 || status >= 500) throw new TransportFailure(`HTTP ${status}: ${message}`, { retryable: true, statusCode: status });
    if (status >= 200 && status < 300) {
      return { errCode: -601001, errMsg: `${PREFIX}.${method}:fail system error: not a result of the function: ${snippet(text)}`, errorType: 'InvalidResponse', requestId, statusCode: status };
    }
    return { errCode: -status, errMsg: `${PREFIX}.${method}:fail HTTP ${status}: ${message}`, errorType: 'HttpRefused', requestId, statusCode: status };
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The cloud object
// ---------------------------------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function nonNegativeInteger(name, value, fallback) {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) throw new TypeError(`wx-plugin-manager-client: ${name} must be a non-negative integer`);
  return value;
}

/**
 * createCloud({ functionName, qualifier?, lambda? }) or createCloud({ url, auth?, region?, service?, credentials? }),
 * both with timeoutMs, retries, retryDelayMs. Returns { openapi: { pluginManager: { …five methods } } }.
 */
function createCloud(options) {
  if (!isObject(options)) throw new TypeError('wx-plugin-manager-client: createCloud({ functionName }) or createCloud({ url, auth })');
  if (options.url !== undefined && options.functionName !== undefined) {
    throw new TypeError('wx-plugin-manager-client: pass functionName (Lambda Invoke) or url (HTTP), not both');
  }
  const timeoutMs = options.timeoutMs === undefined ? DEFAULTS.timeoutMs : options.timeoutMs;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new TypeError('wx-plugin-manager-client: timeoutMs must be a positive number');
  const retries = nonNegativeInteger('retries', options.retries, DEFAULTS.retries);
  const retryDelayMs = nonNegativeInteger('retryDelayMs', options.retryDelayMs, DEFAULTS.retryDelayMs);
  const send = options.url !== undefined ? httpTransport(options) : lambdaTransport(options);

  async function call(method, params) {
    const action = checkParams(method, params);
    const read = READS.has(action);
    for (let attempt = 0; ; attempt++) {
      let answer;
      try {
        answer = await send(method, params, AbortSignal.timeout(timeoutMs));
      } catch (failure) {
        if (!(failure instanceof TransportFailure)) throw failure;
        // A read may be sent again after any transport failure; a change only when it provably never left.
        const again = failure.unsent || (read && failure.retryable);
        if (again && attempt < retries) {
          await sleep(retryDelayMs * 2 ** attempt);
          continue;
        }
        throw failure.timeout
          ? new CloudSDKError({ errCode: -501002, errMsg: `${PREFIX}.${method}:fail resource server timeout`, errorType: 'TransportError', statusCode: failure.statusCode, cause: failure.cause || failure })
          : new CloudSDKError({ errCode: -501001, errMsg: `${PREFIX}.${method}:fail resource system error: ${failure.message}`, errorType: 'TransportError', statusCode: failure.statusCode, cause: failure.cause || failure });
      }
      if (answer.result) return answer.result;
      throw new CloudSDKError({
        errCode: answer.errCode,
        errMsg: namedErrMsg(method, answer.errMsg),
        errorType: answer.errorType,
        requestId: answer.requestId,
        statusCode: answer.statusCode,
      });
    }
  }

  const pluginManager = {};
  for (const method of Object.keys(METHODS)) pluginManager[method] = (params) => call(method, params);
  return { openapi: { pluginManager: Object.freeze(pluginManager) } };
}

module.exports = { createCloud, CloudSDKError, METHODS, signingScope };
