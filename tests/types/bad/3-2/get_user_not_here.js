// must fail (TS2339): in Pre Creation the user is the field ctx.v1.user; getUser() is for the later triggers.
/** @param {Ctx} ctx @param {Api} api */
function username(ctx, api) {
  api.setUsername(ctx.v1.getUser().username);
}
