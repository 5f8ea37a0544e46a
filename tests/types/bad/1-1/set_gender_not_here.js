// must fail (TS2339): api.setGender exists only in Pre Creation, not in Post Authentication.
/** @param {Ctx} ctx @param {Api} api */
function gender(ctx, api) {
  api.setGender(1);
}
