// must fail (TS2339): the client id is read with ctx.v1.application.getClientId(), there is no clientId field.
/** @param {Ctx} ctx @param {Api} api */
function client(ctx, api) {
  api.v1.claims.setClaim('client_id', ctx.v1.application.clientId);
}
