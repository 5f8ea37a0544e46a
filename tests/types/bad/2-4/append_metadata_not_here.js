// must fail (TS2339): Complement Token writes metadata with api.v1.user.setMetadata; appendMetadata is not there.
/** @param {Ctx} ctx @param {Api} api */
function note(ctx, api) {
  api.v1.user.appendMetadata('last_token', Date.now());
}
