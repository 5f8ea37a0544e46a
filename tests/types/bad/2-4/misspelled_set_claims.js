// must fail (TS2551): the function is api.v1.claims.setClaim, not setClaims.
/** @param {Ctx} ctx @param {Api} api */
function addClaims(ctx, api) {
  api.v1.claims.setClaims('tenant', 'acme');
}
