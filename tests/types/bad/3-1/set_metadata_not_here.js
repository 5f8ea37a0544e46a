// must fail (TS2339): Internal Authentication writes metadata with appendMetadata or api.metadata, not setMetadata.
/** @param {Ctx} ctx @param {Api} api */
function audit(ctx, api) {
  api.v1.user.setMetadata('last_login_method', ctx.v1.authMethod);
}
