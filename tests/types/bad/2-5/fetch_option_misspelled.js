// must fail (TS2561): the fetch option is headers, not header (the header would silently not be sent).
/** @param {Ctx} ctx @param {Api} api */
function lookup(ctx, api) {
  const res = require('zitadel/http').fetch('https://api.example.com/x', { method: 'GET', header: { 'X-Key': 'k' } });
  api.v1.claims.setClaim('x', res.json());
}
