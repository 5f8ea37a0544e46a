// must fail (TS2307): there is no module zitadel/crypto (the runtime throws: module not found).
/** @param {Ctx} ctx @param {Api} api */
function hash(ctx, api) {
  const crypto = require('zitadel/crypto');
  api.v1.claims.setClaim('hash', crypto.sha256(ctx.v1.getUser().id));
}
