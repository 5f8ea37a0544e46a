// must fail (TS2339): setEmailVerified belongs to the authentication flows, not to Complement Token.
/** @param {Ctx} ctx @param {Api} api */
function verify(ctx, api) {
  api.setEmailVerified(true);
}
