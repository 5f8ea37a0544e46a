// must fail (TS2345): setEmailVerified takes a boolean, not the string "true" (which Boolean() would also turn "false" into true).
/** @param {Ctx} ctx @param {Api} api */
function verify(ctx, api) {
  api.setEmail(ctx.getClaim('email'));
  api.setEmailVerified('true');
}
