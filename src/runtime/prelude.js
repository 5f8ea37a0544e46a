// Builds `ctx`, `api` and the modules for one v1 action run, from the host's context and the
// effects of the actions that ran before. Evaluated in a fresh realm before the user's script.
// Natives provided by the worker: __input (JSON text), __fetch(json) -> json, __uuid(kind, ns, name),
// __b64(text) -> base64 of UTF-8, __metaValue(base64) -> decoded value.
(function () {
  'use strict';
  const parse = JSON.parse, stringify = JSON.stringify;
  const isArray = Array.isArray, keys = Object.keys, freeze = Object.freeze;
  const Str = String, Bool = Boolean, Num = Number, Dt = Date;
  const fetchNative = __fetch, uuidNative = __uuid, b64 = __b64, metaValue = __metaValue;
  const IN = parse(__input);
  const C = IN.context || {};
  const S = IN.state || {};
  const flow = IN.flow, trigger = IN.trigger, actionName = IN.name;

  // ---------- logging ----------
  const MAX_RECORDS = 1000, MAX_BYTES = 65536;
  const logs = [];
  let logBytes = 0, truncated = false, httpCalls = 0;
  function utf8Length(s) {
    let n = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      n += c < 0x80 ? 1 : c < 0x800 ? 2 : (c >= 0xd800 && c <= 0xdbff) ? (i++, 4) : 3;
    }
    return n;
  }
  function inspect(v) {
    if (typeof v === 'string') return v;
    try {
      const s = stringify(v);
      return s === undefined ? Str(v) : s;
    } catch (e) {
      return Str(v);
    }
  }
  function format(args) {
    if (args.length === 0) return '';
    let first = args[0], rest = 1, out = '';
    if (typeof first === 'string') {
      let i = 0;
      while (i < first.length) {
        const ch = first[i];
        if (ch === '%' && i + 1 < first.length) {
          const f = first[i + 1];
          if (f === '%') { out += '%'; i += 2; continue; }
          if ('sdifjoO'.indexOf(f) >= 0 && rest < args.length) {
            const a = args[rest++];
            if (f === 's') out += typeof a === 'string' ? a : inspect(a);
            else if (f === 'd' || f === 'i') { const n = Num(a); out += f === 'i' ? Str(Math.trunc(n)) : Str(n); }
            else if (f === 'f') out += Str(parseFloat(a));
            else out += inspect(a);
            i += 2;
            continue;
          }
        }
        out += ch;
        i++;
      }
    } else {
      out = inspect(first);
    }
    for (; rest < args.length; rest++) out += ' ' + inspect(args[rest]);
    return out;
  }
  function record(level, args) {
    if (truncated) return;
    const message = format(args);
    const bytes = utf8Length(message);
    if (logs.length >= MAX_RECORDS || logBytes + bytes > MAX_BYTES) {
      truncated = true;
      logs.push({ level: 'warn', message: 'log truncated: a run keeps at most 1000 records and 64 KiB', time: new Dt().toISOString() });
      return;
    }
    logBytes += bytes;
    logs.push({ level: level, message: message, time: new Dt().toISOString() });
  }
  function logger() {
    return freeze({
      log: function () { record('info', arguments); },
      info: function () { record('info', arguments); },
      debug: function () { record('debug', arguments); },
      warn: function () { record('warn', arguments); },
      error: function () { record('error', arguments); },
    });
  }

  // ---------- modules ----------
  function fetch(url, options) {
    if (typeof url !== 'string' && !(url instanceof String)) throw new TypeError('fetch: url must be a string');
    options = options || {};
    const req = { url: Str(url), method: options.method ? Str(options.method).toUpperCase() : 'GET' };
    if (options.headers !== undefined && options.headers !== null) {
      const h = {};
      for (const k of keys(options.headers)) {
        const v = options.headers[k];
        h[k] = isArray(v) ? v.map(Str) : Str(v).split(',').map(function (x) { return x.trim(); });
      }
      req.headers = h;
    }
    if (options.body !== undefined) {
      const body = stringify(options.body);
      if (body !== undefined) req.body = body;
    }
    httpCalls++;
    const res = parse(fetchNative(stringify(req)));
    const text = res.body;
    return {
      status: res.status,
      body: text,
      headers: res.headers,
      text: function () { return text; },
      json: function () {
        try { return parse(text); } catch (e) { throw new Error('fetch: response is not valid JSON: ' + e.message); }
      },
    };
  }
  function ns(name) { return uuidNative('ns', name, ''); }
  const uuid = freeze({
    v1: function () { return uuidNative('v1', '', ''); },
    v4: function () { return uuidNative('v4', '', ''); },
    v7: function () { return uuidNative('v7', '', ''); },
    v3: function (namespace, name) { return uuidNative('v3', Str(namespace), Str(name)); },
    v5: function (namespace, name) { return uuidNative('v5', Str(namespace), Str(name)); },
    namespaceDNS: ns('dns'), namespaceURL: ns('url'), namespaceOID: ns('oid'), namespaceX500: ns('x500'),
  });
  const modules = {
    'zitadel/http': freeze({ fetch: fetch }),
    'zitadel/log': logger(),
    'zitadel/uuid': uuid,
  };
  function require(name) {
    const m = modules[Str(name)];
    if (m === undefined) throw new Error('module "' + Str(name) + '" not found');
    return m;
  }

  // ---------- shared helpers ----------
  const GENDERS = { GENDER_UNSPECIFIED: 0, GENDER_FEMALE: 1, GENDER_MALE: 2, GENDER_DIVERSE: 3 };
  const STATES = { USER_STATE_UNSPECIFIED: 0, USER_STATE_ACTIVE: 1, USER_STATE_INACTIVE: 2, USER_STATE_DELETED: 3,
    USER_STATE_LOCKED: 4, USER_STATE_SUSPEND: 5, USER_STATE_INITIAL: 6 };
  function enumNumber(v, names) {
    if (typeof v === 'string') return names[v] !== undefined ? names[v] : (Num(v) || 0);
    return v === undefined || v === null ? 0 : Num(v) || 0;
  }
  function copy(v) { return v === undefined ? undefined : parse(stringify(v)); }
  function normalizeUser(u) {
    if (!u) return null;
    u = copy(u);
    if ('state' in u) u.state = enumNumber(u.state, STATES);
    if (u.human) u.human.gender = enumNumber(u.human.gender, GENDERS);
    return u;
  }
  function metadataResult(items) {
    const list = (items || []).map(function (m) {
      return { key: m.key, value: metaValue(m.value || ''), creationDate: m.creationDate, changeDate: m.changeDate,
        resourceOwner: m.resourceOwner, sequence: m.sequence };
    });
    return { count: list.length, metadata: list };
  }
  function encodeValue(v) { return b64(stringify(v === undefined ? null : v)); }
  // Metadata written by actions: one per key, last write wins (order of first write kept).
  const metadataEffect = (S.metadata || []).slice();
  function setMetadata(key, value) {
    key = Str(key);
    const entry = { key: key, value: encodeValue(value) };
    for (let i = 0; i < metadataEffect.length; i++) {
      if (metadataEffect[i].key === key) { metadataEffect[i] = entry; return; }
    }
    metadataEffect.push(entry);
  }
  function mergedMetadata(base) {
    const list = (base || []).slice();
    for (const m of metadataEffect) {
      const i = list.findIndex(function (x) { return x.key === m.key; });
      if (i >= 0) list[i] = { key: m.key, value: m.value }; else list.push(m);
    }
    return list;
  }
  function prefilledMetadata(items) {
    const arr = [];
    const originals = [];
    for (const m of items || []) {
      const item = { key: m.key, value: metaValue(m.value || '') };
      arr.push(item);
      originals.push({ item: item, key: m.key, encoded: m.value || '' });
    }
    return { arr: arr, originals: originals };
  }
  function collectArrayMetadata(arr, originals) {
    for (const item of arr) {
      if (!item || typeof item !== 'object') continue;
      const o = originals.find(function (x) { return x.item === item; });
      const encoded = encodeValue(item.value);
      if (o && o.key === Str(item.key) && o.encoded === encoded) continue;
      setMetadata(item.key, item.value);
    }
  }
  function grantsOf(ctxGrants) {
    const list = copy(ctxGrants || []);
    return { count: list.length, grants: list };
  }
  function locale(v) {
    v = Str(v);
    return /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(v) ? v : 'und';
  }

  let ctx, api, finish;
  const v1ctx = {}, v1api = {};

  if (flow === 1 && trigger === 1) {
    const ext = copy(S.externalUser || C.externalUser || {});
    ext.human = ext.human || {};
    const claims = C.idTokenClaims || {};
    const pre = prefilledMetadata(ext.metadata);
    const metadata = pre.arr;
    ctx = {
      accessToken: C.accessToken || '', idToken: C.idToken || '', refreshToken: C.refreshToken || '',
      getClaim: function (name) { const v = claims[Str(name)]; return v === undefined ? null : copy(v); },
      claimsJSON: function () { return stringify(claims); },
      v1: { externalUser: copy(ext), authError: C.authError || 'none', authRequest: copy(C.authRequest),
        httpRequest: copy(C.httpRequest), providerInfo: copy(C.providerInfo),
        org: { getMetadata: function () { return metadataResult(C.org && C.org.metadata); } } },
    };
    const h = ext.human;
    api = {
      setFirstName: function (v) { h.firstName = Str(v); }, setLastName: function (v) { h.lastName = Str(v); },
      setNickName: function (v) { h.nickName = Str(v); }, setDisplayName: function (v) { h.displayName = Str(v); },
      setPreferredLanguage: function (v) { h.preferredLanguage = locale(v); },
      setPreferredUsername: function (v) { ext.preferredUsername = Str(v); },
      setEmail: function (v) { h.email = Str(v); }, setEmailVerified: function (v) { h.isEmailVerified = Bool(v); },
      setPhone: function (v) { h.phone = Str(v); }, setPhoneVerified: function (v) { h.isPhoneVerified = Bool(v); },
      metadata: metadata,
      v1: { user: { appendMetadata: function (k, v) { metadata.push({ key: Str(k), value: v }); } } },
    };
    finish = function () {
      collectArrayMetadata(metadata, pre.originals);
      const e = copy(ext);
      delete e.metadata;
      return { externalUser: e, metadata: metadataEffect };
    };
  } else if ((flow === 1 || flow === 3) && trigger === 2) {
    const user = normalizeUser(S.user || C.user) || {};
    user.human = user.human || {};
    const h = user.human;
    const metadata = [];
    ctx = { v1: { user: copy(user), authRequest: copy(C.authRequest), httpRequest: copy(C.httpRequest) } };
    api = {
      setFirstName: function (v) { h.firstName = Str(v); }, setLastName: function (v) { h.lastName = Str(v); },
      setNickName: function (v) { h.nickName = Str(v); }, setDisplayName: function (v) { h.displayName = Str(v); },
      setPreferredLanguage: function (v) { h.preferredLanguage = locale(v); },
      setGender: function (v) { h.gender = enumNumber(v, GENDERS); },
      setUsername: function (v) { user.username = Str(v); },
      setEmail: function (v) { h.email = Str(v); },
      setEmailVerified: function (v) { if (h.email) h.isEmailVerified = Bool(v); },
      setPhone: function (v) { h.phone = Str(v); },
      setPhoneVerified: function (v) { if (h.phone) h.isPhoneVerified = Bool(v); },
      metadata: metadata,
      v1: { user: { appendMetadata: function (k, v) { metadata.push({ key: Str(k), value: v }); } } },
    };
    finish = function () {
      collectArrayMetadata(metadata, []);
      return { user: copy(user), metadata: metadataEffect };
    };
  } else if ((flow === 1 || flow === 3) && trigger === 3) {
    const grants = copy(S.userGrants || []);
    const userGrants = [];
    const user = normalizeUser(C.user);
    ctx = { v1: { getUser: function () { return copy(user); }, authRequest: copy(C.authRequest), httpRequest: copy(C.httpRequest) } };
    api = {
      userGrants: userGrants,
      v1: {
        appendUserGrant: function (g) {
          if (!g || g.projectId === undefined || g.projectId === null || g.projectId === '') {
            throw new TypeError('appendUserGrant: projectId is required');
          }
          userGrants.push({ projectId: g.projectId, projectGrantId: g.projectGrantId, roles: g.roles });
        },
      },
    };
    finish = function () {
      for (const g of userGrants) {
        if (!g || typeof g !== 'object') continue;
        const out = { projectId: Str(g.projectId !== undefined ? g.projectId : (g.projectID !== undefined ? g.projectID : '')) };
        const pg = g.projectGrantId !== undefined ? g.projectGrantId : g.projectGrantID;
        if (pg !== undefined && pg !== null && pg !== '') out.projectGrantId = Str(pg);
        out.roles = isArray(g.roles) ? g.roles.map(Str) : [];
        grants.push(out);
      }
      return { userGrants: grants };
    };
  } else if (flow === 3 && trigger === 1) {
    const metadata = [];
    ctx = { v1: { authMethod: C.authMethod || '', authError: C.authError || 'none', authRequest: copy(C.authRequest), httpRequest: copy(C.httpRequest) } };
    api = { metadata: metadata, v1: { user: { appendMetadata: function (k, v) { metadata.push({ key: Str(k), value: v }); } } } };
    finish = function () {
      collectArrayMetadata(metadata, []);
      return { metadata: metadataEffect };
    };
  } else if (flow === 2 && (trigger === 4 || trigger === 5)) {
    const added = copy(S.claims || {});
    const inputClaims = C.claims || {};
    const actionLog = [];
    const user = normalizeUser(C.user);
    const claimsView = function () {
      const all = copy(inputClaims);
      for (const k of keys(added)) all[k] = copy(added[k]);
      return all;
    };
    ctx = { v1: {
      claims: claimsView(),
      getUser: function () { return copy(user); },
      user: { getMetadata: function () { return metadataResult(mergedMetadata(C.userMetadata)); }, grants: grantsOf(C.userGrants) },
      org: { getMetadata: function () { return metadataResult(C.org && C.org.metadata); } },
      application: { getClientId: function () { return (C.application && C.application.clientId) || ''; } },
      actor: C.actor === undefined ? null : copy(C.actor),
    } };
    const setClaim = function (key, value) {
      key = Str(key);
      if (key.indexOf('urn:zitadel:iam') === 0) return;
      if (Object.prototype.hasOwnProperty.call(inputClaims, key) || Object.prototype.hasOwnProperty.call(added, key)) {
        actionLog.push('key "' + key + '" already exists');
        return;
      }
      added[key] = value === undefined ? null : copy(value);
    };
    const appendLog = function (entry) { actionLog.push(Str(entry)); };
    const claimsApi = { setClaim: setClaim, appendLogIntoClaims: appendLog };
    api = { v1: { claims: claimsApi, userinfo: claimsApi, user: { setMetadata: setMetadata } } };
    finish = function () {
      if (actionLog.length > 0) added['urn:zitadel:iam:action:' + actionName + ':log'] = actionLog;
      return { claims: added, metadata: metadataEffect };
    };
  } else if (flow === 4 && trigger === 6) {
    const attributes = copy(S.attributes || []);
    const user = normalizeUser(C.user);
    ctx = { v1: {
      getUser: function () { return copy(user); },
      user: { getMetadata: function () { return metadataResult(mergedMetadata(C.userMetadata)); }, grants: grantsOf(C.userGrants) },
      org: { getMetadata: function () { return metadataResult(C.org && C.org.metadata); } },
    } };
    api = { v1: {
      attributes: { setCustomAttribute: function (name, nameFormat) {
        name = Str(name);
        if (attributes.some(function (a) { return a.name === name; })) return;
        const values = [];
        for (let i = 2; i < arguments.length; i++) values.push(Str(arguments[i]));
        attributes.push({ name: name, nameFormat: nameFormat === undefined || nameFormat === null ? '' : Str(nameFormat), values: values });
      } },
      user: { setMetadata: setMetadata },
    } };
    finish = function () { return { attributes: attributes, metadata: metadataEffect }; };
  } else {
    throw new Error('unsupported flow/trigger ' + flow + '/' + trigger);
  }

  return {
    ctx: ctx,
    api: api,
    require: require,
    console: logger(),
    // Called by the worker after the action succeeded: the new effects state and the run's logs.
    finish: function () { return stringify({ state: finish(), logs: logs, httpCalls: httpCalls, logBytes: logBytes }); },
    logs: function () { return stringify({ logs: logs, httpCalls: httpCalls, logBytes: logBytes }); },
  };
})();
