// must fail (TS2345): secrets are looked up by name (a string); the runtime throws a TypeError for a number.
/** @param {Ctx} ctx @param {Api} api */
function key(ctx, api) {
  api.v1.claims.setClaim('key_set', require('zitadel/secrets').get(42) !== undefined);
}
