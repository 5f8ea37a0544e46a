// must fail (TS2339): api.v1.claims belongs to Complement Token, not to External Authentication.
/** @param {Ctx} ctx @param {Api} api */
function addClaim(ctx, api) {
  api.v1.claims.setClaim('idp', ctx.v1.providerInfo.name);
}
