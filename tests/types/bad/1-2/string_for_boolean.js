// must fail (TS2345): setPhoneVerified takes a boolean; the string "false" would verify the phone.
/** @param {Ctx} ctx @param {Api} api */
function phone(ctx, api) {
  api.setPhone(ctx.v1.user.human.phone);
  api.setPhoneVerified('false');
}
