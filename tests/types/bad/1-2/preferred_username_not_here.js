// must fail (TS2339): setPreferredUsername exists only in External Authentication / Post Authentication.
/** @param {Ctx} ctx @param {Api} api */
function username(ctx, api) {
  api.setPreferredUsername(ctx.v1.user.username);
}
