/**
 * Tells the resource server which client asked for the token and who the actor is.
 *
 * Flow: Complement Token, Trigger: Pre access token creation
 * @param {Ctx} ctx
 * @param {Api} api
 */
function actorClaims(ctx, api) {
  api.v1.claims.setClaim('client_id', ctx.v1.application.getClientId());
  if (ctx.v1.actor) {
    api.v1.claims.setClaim('act', { iss: ctx.v1.actor.issuer, sub: ctx.v1.actor.subject });
  }
}
