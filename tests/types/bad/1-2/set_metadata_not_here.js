// must fail (TS2339): Pre Creation has api.v1.user.appendMetadata; setMetadata is for Complement Token and SAML.
/** @param {Ctx} ctx @param {Api} api */
function note(ctx, api) {
  api.v1.user.setMetadata('source', 'idp');
}
