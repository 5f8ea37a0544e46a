// must fail (TS2551): the field is ctx.v1.authMethod.
/** @param {Ctx} ctx @param {Api} api */
function audit(ctx, api) {
  api.v1.user.appendMetadata('last_login_method', ctx.v1.authMethods);
}
