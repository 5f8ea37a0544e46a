// The same Complement Token action run in a fresh `vm` context per run, with ctx/api built in JS
// the way a Node-based action runner would. Prints the per-run cost like `actionsd bench-runtime`.
//   node bench/node_vm.js [iterations]          per-run cost
//   node bench/node_vm.js --serve PORT [n]      HTTP server: POST /execute runs n copies per request
'use strict';
const vm = require('vm');
const http = require('http');

const SCRIPT = `function addClaims(ctx, api) {
  api.v1.claims.setClaim('tenant', 'acme');
  api.v1.claims.setClaim('roles', ['admin', 'user']);
  api.v1.claims.setClaim('year', 2026);
  api.v1.user.setMetadata('lastLogin', 'today');
  require('zitadel/log').info('claims added for %s', ctx.v1.getUser().username);
}`;
const compiled = new vm.Script(SCRIPT);

function runOnce(context, state) {
  const claimsIn = context.claims || {};
  const added = Object.assign({}, state.claims || {});
  const metadata = (state.metadata || []).slice();
  const logs = [];
  const actionLog = [];
  const log = (level) => (...args) => logs.push({ level, message: require('util').format(...args), time: new Date().toISOString() });
  const logger = { log: log('info'), info: log('info'), debug: log('debug'), warn: log('warn'), error: log('error') };
  const sandbox = {
    require: (name) => { if (name === 'zitadel/log') return logger; throw new Error(`module "${name}" not found`); },
    console: logger,
  };
  const ctx = vm.createContext(sandbox);
  compiled.runInContext(ctx, { timeout: 5000 });
  const ctxArg = { v1: { claims: Object.assign({}, claimsIn, added), getUser: () => JSON.parse(JSON.stringify(context.user)) } };
  const api = { v1: {
    claims: { setClaim: (k, v) => {
      if (k.startsWith('urn:zitadel:iam')) return;
      if (k in claimsIn || k in added) { actionLog.push(`key "${k}" already exists`); return; }
      added[k] = v;
    } },
    user: { setMetadata: (k, v) => {
      const entry = { key: k, value: Buffer.from(JSON.stringify(v)).toString('base64') };
      const i = metadata.findIndex((m) => m.key === k);
      if (i >= 0) metadata[i] = entry; else metadata.push(entry);
    } },
  } };
  ctx.__ctx = ctxArg; ctx.__api = api;
  vm.runInContext('addClaims(__ctx, __api)', ctx, { timeout: 5000 });
  if (actionLog.length) added['urn:zitadel:iam:action:addClaims:log'] = actionLog;
  return { claims: added, metadata, logs };
}

const CONTEXT = { claims: { sub: '123' }, user: { id: '123', username: 'alice', human: { firstName: 'Alice' } } };

if (process.argv[2] === '--serve') {
  const port = Number(process.argv[3]);
  const actions = Number(process.argv[4] || 1);
  http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
      let state = {};
      for (let i = 0; i < actions; i++) state = runOnce(body.context || CONTEXT, state);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ outcome: 'OUTCOME_SUCCEEDED', effects: { claims: state.claims, metadata: state.metadata } }));
    });
  }).listen(port, '127.0.0.1');
} else {
  const n = Number(process.argv[2] || 2000);
  for (let i = 0; i < 50; i++) runOnce(CONTEXT, {});
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    runOnce(CONTEXT, {});
    samples.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  samples.sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / n;
  console.log(`node vm (fresh context + script + call): runs=${n} mean=${mean.toFixed(1)}us p50=${samples[Math.floor(n * 0.5)].toFixed(1)}us p99=${samples[Math.floor(n * 0.99)].toFixed(1)}us`);
}
