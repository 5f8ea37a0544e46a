// must fail (TS2345): setGender takes a number or a GENDER_* name, not "female".
/** @param {Ctx} ctx @param {Api} api */
function gender(ctx, api) {
  api.setGender('female');
}
