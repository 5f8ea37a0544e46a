// must fail (TS2345): setEmailVerified takes a boolean, not a string.
/** @type {ActionFunction} */
function verify(ctx, api) {
  api.setEmailVerified(ctx.v1.user.human.email ? 'yes' : 'no');
}
