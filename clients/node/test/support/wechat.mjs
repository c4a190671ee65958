// Comparing the client's outcome of a call with wx-server-sdk's (see wx-server-sdk.mjs), as a migrating user would.
import assert from 'node:assert/strict';

const RID = / rid: [0-9a-zA-Z-]+$/;
const withoutRid = (text) => text.replace(/ rid: [0-9a-zA-Z-]+/g, ' rid: <rid>');

/** The outcome of `promise`: `{ result }` or `{ error }`. */
export async function outcome(promise) {
  try {
    return { result: await promise };
  } catch (error) {
    return { error };
  }
}

/**
 * The client's outcome is wx-server-sdk's: a result with the same JSON text (so the same keys in the same order);
 * an error with the same own enumerable fields in the same order, errCode, errMsg, message and JSON text
 * (WeChat's varying ` rid: …` aside).
 */
export function assertSameAsWxServerSdk(actual, expected) {
  if (expected.result) {
    assert.ok(actual.result, `expected a result, got ${actual.error && actual.error.message}`);
    assert.deepEqual(actual.result, expected.result);
    assert.equal(JSON.stringify(actual.result), JSON.stringify(expected.result));
    return;
  }
  assert.ok(expected.error && typeof expected.error.errMsg === 'string', `wx-server-sdk failed otherwise: ${expected.error}`);
  assert.ok(actual.error, `expected an error, got ${JSON.stringify(actual.result)}`);
  const { error } = actual;
  assert.ok(error instanceof Error);
  assert.deepEqual(Object.keys(error), Object.keys(expected.error));
  assert.equal(error.errCode, expected.error.errCode);
  assert.equal(withoutRid(error.errMsg), withoutRid(expected.error.errMsg));
  if (RID.test(expected.error.errMsg)) assert.match(error.errMsg, RID);
  assert.equal(withoutRid(error.message), withoutRid(expected.error.message));
  assert.equal(withoutRid(JSON.stringify(error)), withoutRid(JSON.stringify(expected.error)));
}
