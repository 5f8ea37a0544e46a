// must fail (TS2551): the setter is setUsername (lower-case n).
/** @param {Ctx} ctx @param {Api} api */
function username(ctx, api) {
  api.setUserName(ctx.v1.user.human.email);
}
