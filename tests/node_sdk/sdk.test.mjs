#!/usr/bin/env node
// Compatibility check: the official ZITADEL Node SDK (@zitadel/node, unmodified) against actionsd
// over gRPC on plain HTTP/2 (h2c), the way a ZITADEL user's Node program would talk to ZITADEL.
//
//   ManagementService (zitadel.management.v1), through the SDK's createManagementClient and its
//   createAccessTokenInterceptor: the life of one action (create, get, update, list, deactivate,
//   reactivate, put on a flow trigger, clear the flow, delete) and the status codes of a missing
//   action (NOT_FOUND) and of a wrong or missing token (UNAUTHENTICATED).
//
//   ActionService (zitadel.action.v2), through a nice-grpc client built from the SDK's generated
//   ActionServiceDefinition and the same interceptor: a target and a request execution (create,
//   get, list, set, list, clear, delete).
//
// Environment:
//   ACTIONSD_URL    the server, h2c: http://127.0.0.1:8080 (a trailing slash is ignored)
//   ACTIONSD_TOKEN  a bearer access token with the IAM_OWNER role (its default org is used)
//   ACTIONSD_ORG    optional: sent as `x-zitadel-orgid` metadata on every call
//   ACTIONSD_CALL_TIMEOUT_MS  optional: the limit of each call, default 15000
//
// Prints `PASS <step>` or `FAIL <step>: <why>` per step, then a cargo-style
// `test result: ...` line (what .ci/run sums) and last `node-sdk: N passed, M failed`.
// Exits 1 if any step failed, 2 if the environment is incomplete.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';

import { ClientError, Metadata, Status, createChannel, createClientFactory } from 'nice-grpc';

// The SDK has no "main"/"exports" in its package.json: its entry points are the files in dist/.
import {
  createAccessTokenInterceptor,
  createManagementClient,
} from '@zitadel/node/dist/api/index.js';
import { ActionState } from '@zitadel/node/dist/api/generated/zitadel/action.js';
import { TextQueryMethod } from '@zitadel/node/dist/api/generated/zitadel/object.js';
import { TextFilterMethod } from '@zitadel/node/dist/api/generated/zitadel/filter/v2/filter.js';
import { ActionServiceDefinition } from '@zitadel/node/dist/api/generated/zitadel/action/v2/action_service.js';

// ---------------------------------------------------------------------------------------------
// environment

const URL_RAW = process.env.ACTIONSD_URL ?? '';
const TOKEN = process.env.ACTIONSD_TOKEN ?? '';
const ORG = process.env.ACTIONSD_ORG ?? '';
const CALL_TIMEOUT_MS = Number(process.env.ACTIONSD_CALL_TIMEOUT_MS ?? 15000);

if (!URL_RAW || !TOKEN) {
  console.error('node-sdk: set ACTIONSD_URL (e.g. http://127.0.0.1:8080) and ACTIONSD_TOKEN (an IAM_OWNER token)');
  console.log('test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out (node sdk: environment incomplete)');
  console.log('node-sdk: 0 passed, 1 failed');
  process.exit(2);
}
// nice-grpc's createChannel parses `protocol://host:port` and nothing after it.
const URL = URL_RAW.replace(/\/+$/, '');

const require = createRequire(import.meta.url);
const versionOf = (pkg) => {
  try {
    return require(`${pkg}/package.json`).version;
  } catch {
    return '?';
  }
};
console.log(
  `node-sdk: @zitadel/node ${versionOf('@zitadel/node')}, nice-grpc ${versionOf('nice-grpc')}, ` +
    `@grpc/grpc-js ${versionOf('@grpc/grpc-js')}, node ${process.version}; server ${URL}` +
    (ORG ? `, x-zitadel-orgid ${ORG}` : ''),
);

// ---------------------------------------------------------------------------------------------
// runner

let passed = 0;
let failed = 0;

function describeError(e) {
  if (e instanceof ClientError) {
    return `gRPC ${Status[e.code] ?? e.code} (${e.code}) on ${e.path}: ${e.details}`;
  }
  if (e instanceof assert.AssertionError) {
    return e.message.split('\n').join(' ');
  }
  return `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
}

/** Runs one step; a step never stops the ones after it (later cleanup steps still run). */
async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`PASS ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${describeError(e)}`);
    if (process.env.ACTIONSD_SDK_VERBOSE && e?.stack) console.log(e.stack);
  }
}

/** What a step needs from an earlier one; a clear failure when that one failed. */
function need(value, what) {
  if (value === undefined || value === null || value === '') {
    throw new Error(`${what} is missing (an earlier step failed)`);
  }
  return value;
}

/** Long (int64 fields), number or string to a number. */
function num(v) {
  if (v && typeof v === 'object' && typeof v.toNumber === 'function') return v.toNumber();
  return Number(v);
}

/** Awaits a call that must fail with the gRPC status `code`. */
async function expectStatus(promise, code, what) {
  let result;
  try {
    result = await promise;
  } catch (e) {
    if (!(e instanceof ClientError)) throw e;
    assert.equal(
      e.code,
      code,
      `${what}: expected status ${Status[code]} (${code}), got ${Status[e.code] ?? e.code} (${e.code}): ${e.details}`,
    );
    return e;
  }
  assert.fail(`${what}: expected status ${Status[code]} (${code}), the call succeeded: ${JSON.stringify(result)}`);
}

/** Call options: a time limit on every call, so that a server that never answers fails the step. */
const opts = () => ({ signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });

// ---------------------------------------------------------------------------------------------
// clients

/** Adds `x-zitadel-orgid` when ACTIONSD_ORG is set. */
const orgMiddleware = async function* (call, options) {
  if (ORG) {
    options.metadata ??= new Metadata();
    options.metadata.set('x-zitadel-orgid', ORG);
  }
  return yield* call.next(call.request, options);
};

const auth = createAccessTokenInterceptor(TOKEN);
const mgmt = createManagementClient(URL, auth, orgMiddleware);
const mgmtWrongToken = createManagementClient(
  URL,
  createAccessTokenInterceptor(`wrong-${randomBytes(16).toString('hex')}`),
  orgMiddleware,
);
const mgmtNoToken = createManagementClient(URL, orgMiddleware);

const channel = createChannel(URL);
const actionV2 = createClientFactory().use(auth).use(orgMiddleware).create(ActionServiceDefinition, channel);

const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;

// ---------------------------------------------------------------------------------------------
// ManagementService: actions and flows

const NAME_1 = `sdk-action-${run}`;
const SCRIPT_1 = 'function sdkAction(ctx, api) {}';
const NAME_2 = `sdk-action-${run}-renamed`;
const SCRIPT_2 = 'function sdkAction(ctx, api) { /* updated */ }';
const FLOW_EXTERNAL_AUTHENTICATION = '1';
const TRIGGER_POST_AUTHENTICATION = '1';

let actionId;

await step('v1 CreateAction returns an id', async () => {
  const res = await mgmt.createAction(
    { name: NAME_1, script: SCRIPT_1, timeout: { seconds: 2, nanos: 0 }, allowedToFail: true },
    opts(),
  );
  assert.equal(typeof res.id, 'string');
  assert.match(res.id, /^\S+$/, 'id is a non-empty string');
  assert.ok(res.details, 'details are set');
  assert.ok(num(res.details.sequence) > 0, `details.sequence > 0, got ${res.details.sequence}`);
  if (ORG) assert.equal(res.details.resourceOwner, ORG, 'details.resourceOwner is the org');
  actionId = res.id;
});

await step('v1 GetAction returns what was created', async () => {
  const id = need(actionId, 'action id');
  const { action } = await mgmt.getAction({ id }, opts());
  assert.ok(action, 'action is set');
  assert.equal(action.id, id);
  assert.equal(action.name, NAME_1);
  assert.equal(action.script, SCRIPT_1);
  assert.equal(action.state, ActionState.ACTION_STATE_ACTIVE, `state ${ActionState[action.state]}`);
  assert.equal(action.allowedToFail, true);
  assert.ok(action.timeout, 'timeout is set');
  assert.equal(num(action.timeout.seconds), 2, 'timeout.seconds');
  assert.equal(action.timeout.nanos, 0, 'timeout.nanos');
});

await step('v1 UpdateAction changes name, script, timeout and allowedToFail', async () => {
  const id = need(actionId, 'action id');
  const res = await mgmt.updateAction(
    { id, name: NAME_2, script: SCRIPT_2, timeout: { seconds: 3, nanos: 0 }, allowedToFail: false },
    opts(),
  );
  assert.ok(res.details, 'details are set');
  const { action } = await mgmt.getAction({ id }, opts());
  assert.ok(action, 'action is set');
  assert.equal(action.id, id);
  assert.equal(action.name, NAME_2);
  assert.equal(action.script, SCRIPT_2);
  assert.equal(num(action.timeout?.seconds), 3, 'timeout.seconds');
  assert.equal(action.allowedToFail, false);
  assert.equal(action.state, ActionState.ACTION_STATE_ACTIVE, `state ${ActionState[action.state]}`);
});

await step('v1 ListActions with an exact name query finds exactly it', async () => {
  const id = need(actionId, 'action id');
  const res = await mgmt.listActions(
    { queries: [{ actionNameQuery: { name: NAME_2, method: TextQueryMethod.TEXT_QUERY_METHOD_EQUALS } }] },
    opts(),
  );
  assert.ok(res.details, 'details are set');
  assert.equal(num(res.details.totalResult), 1, 'details.totalResult');
  assert.deepEqual(
    res.result.map((a) => [a.id, a.name]),
    [[id, NAME_2]],
  );
  // and the old name no longer matches
  const old = await mgmt.listActions(
    { queries: [{ actionNameQuery: { name: NAME_1, method: TextQueryMethod.TEXT_QUERY_METHOD_EQUALS } }] },
    opts(),
  );
  assert.equal(old.result.length, 0, 'the old name finds nothing');
  assert.equal(num(old.details?.totalResult ?? 0), 0, 'details.totalResult for the old name');
});

await step('v1 DeactivateAction makes it INACTIVE', async () => {
  const id = need(actionId, 'action id');
  const res = await mgmt.deactivateAction({ id }, opts());
  assert.ok(res.details, 'details are set');
  const { action } = await mgmt.getAction({ id }, opts());
  assert.equal(action?.state, ActionState.ACTION_STATE_INACTIVE, `state ${ActionState[action?.state]}`);
});

await step('v1 ReactivateAction makes it ACTIVE again', async () => {
  const id = need(actionId, 'action id');
  const res = await mgmt.reactivateAction({ id }, opts());
  assert.ok(res.details, 'details are set');
  const { action } = await mgmt.getAction({ id }, opts());
  assert.equal(action?.state, ActionState.ACTION_STATE_ACTIVE, `state ${ActionState[action?.state]}`);
});

let flowSet = false;
await step('v1 SetTriggerActions then GetFlow shows the action on the trigger', async () => {
  const id = need(actionId, 'action id');
  const res = await mgmt.setTriggerActions(
    { flowType: FLOW_EXTERNAL_AUTHENTICATION, triggerType: TRIGGER_POST_AUTHENTICATION, actionIds: [id] },
    opts(),
  );
  flowSet = true;
  assert.ok(res.details, 'details are set');
  const { flow } = await mgmt.getFlow({ type: FLOW_EXTERNAL_AUTHENTICATION }, opts());
  assert.ok(flow, 'flow is set');
  assert.equal(flow.type?.id, FLOW_EXTERNAL_AUTHENTICATION, 'flow.type.id');
  const triggers = flow.triggerActions.filter((t) => t.triggerType?.id === TRIGGER_POST_AUTHENTICATION);
  assert.equal(triggers.length, 1, `one entry for trigger ${TRIGGER_POST_AUTHENTICATION}, got ${triggers.length}`);
  assert.deepEqual(
    triggers[0].actions.map((a) => [a.id, a.name]),
    [[id, NAME_2]],
    'the trigger holds exactly the action',
  );
});

await step('v1 ClearFlow empties the flow', async () => {
  if (!flowSet) throw new Error('SetTriggerActions did not succeed, nothing to clear');
  const res = await mgmt.clearFlow({ type: FLOW_EXTERNAL_AUTHENTICATION }, opts());
  assert.ok(res.details, 'details are set');
  const { flow } = await mgmt.getFlow({ type: FLOW_EXTERNAL_AUTHENTICATION }, opts());
  const actions = (flow?.triggerActions ?? []).flatMap((t) => t.actions.map((a) => a.id));
  assert.deepEqual(actions, [], 'no action is left on the flow');
});

await step('v1 DeleteAction then GetAction fails with NOT_FOUND', async () => {
  const id = need(actionId, 'action id');
  await mgmt.deleteAction({ id }, opts());
  await expectStatus(mgmt.getAction({ id }, opts()), Status.NOT_FOUND, 'GetAction of a deleted action');
});

await step('v1 a wrong token fails with UNAUTHENTICATED', async () => {
  await expectStatus(mgmtWrongToken.listActions({}, opts()), Status.UNAUTHENTICATED, 'ListActions with a wrong token');
});

await step('v1 no token fails with UNAUTHENTICATED', async () => {
  await expectStatus(mgmtNoToken.listActions({}, opts()), Status.UNAUTHENTICATED, 'ListActions without a token');
});

// ---------------------------------------------------------------------------------------------
// ActionService v2: a target and a request execution.
// (After the v1 part: while the execution is set, every ManagementService/GetAction would call
// the target, so no GetAction is sent until it is cleared.)

const TARGET_NAME = `sdk-target-${run}`;
const DECOY_NAME = `${TARGET_NAME}-decoy`;
const TARGET_ENDPOINT = 'https://example.com/hook';
const GET_ACTION_METHOD = '/zitadel.management.v1.ManagementService/GetAction';
let targetId;
let executionSet = false;

await step('v2 CreateTarget returns an id', async () => {
  const res = await actionV2.createTarget(
    {
      name: TARGET_NAME,
      restWebhook: { interruptOnError: false },
      endpoint: TARGET_ENDPOINT,
      timeout: { seconds: 10, nanos: 0 },
    },
    opts(),
  );
  assert.equal(typeof res.id, 'string');
  assert.match(res.id, /^\S+$/, 'id is a non-empty string');
  assert.ok(res.creationDate instanceof Date && !Number.isNaN(res.creationDate.getTime()), 'creationDate is a date');
  assert.ok(res.signingKey.length > 0, 'a signing key is returned');
  targetId = res.id;
});

await step('v2 GetTarget returns what was created', async () => {
  const id = need(targetId, 'target id');
  const { target } = await actionV2.getTarget({ id }, opts());
  assert.ok(target, 'target is set');
  assert.equal(target.id, id);
  assert.equal(target.name, TARGET_NAME);
  assert.equal(target.endpoint, TARGET_ENDPOINT);
  assert.deepEqual(target.restWebhook, { interruptOnError: false }, 'restWebhook');
  assert.equal(target.restCall, undefined, 'restCall is not set');
  assert.equal(target.restAsync, undefined, 'restAsync is not set');
  assert.equal(num(target.timeout?.seconds), 10, 'timeout.seconds');
});

let decoyId;
await step('v2 CreateTarget of a second target (its name starts with the first one\'s)', async () => {
  const res = await actionV2.createTarget(
    { name: DECOY_NAME, restCall: { interruptOnError: true }, endpoint: TARGET_ENDPOINT, timeout: { seconds: 5, nanos: 0 } },
    opts(),
  );
  assert.match(res.id, /^\S+$/, 'id is a non-empty string');
  assert.notEqual(res.id, targetId, 'a new id');
  decoyId = res.id;
});

await step('v2 SetExecution on a request method with the target', async () => {
  const id = need(targetId, 'target id');
  const res = await actionV2.setExecution({ condition: { request: { method: GET_ACTION_METHOD } }, targets: [id] }, opts());
  executionSet = true;
  assert.ok(res.setDate instanceof Date && !Number.isNaN(res.setDate.getTime()), 'setDate is a date');
});

await step('v2 ListTargets with an exact name filter finds the target', async () => {
  const id = need(targetId, 'target id');
  const res = await actionV2.listTargets(
    { filters: [{ targetNameFilter: { targetName: TARGET_NAME, method: TextFilterMethod.TEXT_FILTER_METHOD_EQUALS } }] },
    opts(),
  );
  assert.equal(num(res.pagination?.totalResult), 1, 'pagination.totalResult');
  assert.deepEqual(
    res.targets.map((t) => [t.id, t.name, t.endpoint]),
    [[id, TARGET_NAME, TARGET_ENDPOINT]],
  );
});

await step('v2 ListExecutions finds the execution of the target', async () => {
  const id = need(targetId, 'target id');
  const byTarget = await actionV2.listExecutions({ filters: [{ targetFilter: { targetId: id } }] }, opts());
  assert.deepEqual(
    byTarget.executions.map((e) => [e.condition?.request?.method, e.targets]),
    [[GET_ACTION_METHOD, [id]]],
    'by targetFilter',
  );
  const byCondition = await actionV2.listExecutions(
    { filters: [{ inConditionsFilter: { conditions: [{ request: { method: GET_ACTION_METHOD } }] } }] },
    opts(),
  );
  assert.deepEqual(
    byCondition.executions.map((e) => [e.condition?.request?.method, e.targets]),
    [[GET_ACTION_METHOD, [id]]],
    'by inConditionsFilter',
  );
});

await step('v2 SetExecution with no targets removes the execution', async () => {
  if (!executionSet) throw new Error('SetExecution did not succeed, nothing to clear');
  await actionV2.setExecution({ condition: { request: { method: GET_ACTION_METHOD } }, targets: [] }, opts());
  const id = need(targetId, 'target id');
  const res = await actionV2.listExecutions({ filters: [{ targetFilter: { targetId: id } }] }, opts());
  assert.equal(res.executions.length, 0, 'no execution refers to the target');
  const byCondition = await actionV2.listExecutions(
    { filters: [{ inConditionsFilter: { conditions: [{ request: { method: GET_ACTION_METHOD } }] } }] },
    opts(),
  );
  assert.deepEqual(
    byCondition.executions.map((e) => [e.condition?.request?.method, e.targets]),
    [],
    'no execution is left on the condition',
  );
});

await step('v2 DeleteTarget then GetTarget fails with NOT_FOUND', async () => {
  const id = need(targetId, 'target id');
  const res = await actionV2.deleteTarget({ id }, opts());
  assert.ok(res.deletionDate instanceof Date, 'deletionDate is a date');
  await expectStatus(actionV2.getTarget({ id }, opts()), Status.NOT_FOUND, 'GetTarget of a deleted target');
});

await step('v2 DeleteTarget of the second target', async () => {
  const id = need(decoyId, 'second target id');
  await actionV2.deleteTarget({ id }, opts());
  const res = await actionV2.listTargets(
    { filters: [{ inTargetIdsFilter: { targetIds: [id, need(targetId, 'target id')] } }] },
    opts(),
  );
  assert.deepEqual(res.targets.map((t) => t.id), [], 'neither target is listed any more');
});

await step('v2 a wrong token fails with UNAUTHENTICATED', async () => {
  const wrong = createClientFactory()
    .use(createAccessTokenInterceptor(`wrong-${randomBytes(16).toString('hex')}`))
    .use(orgMiddleware)
    .create(ActionServiceDefinition, channel);
  await expectStatus(wrong.listTargets({}, opts()), Status.UNAUTHENTICATED, 'ListTargets with a wrong token');
});

// ---------------------------------------------------------------------------------------------

channel.close();
const verdict = failed === 0 ? 'ok' : 'FAILED';
console.log(`test result: ${verdict}. ${passed} passed; ${failed} failed; 0 ignored; 0 measured; 0 filtered out (node sdk)`);
console.log(`node-sdk: ${passed} passed, ${failed} failed`);
// The SDK's management clients own channels it does not expose; exit rather than wait for them.
process.exit(failed === 0 ? 0 : 1);
