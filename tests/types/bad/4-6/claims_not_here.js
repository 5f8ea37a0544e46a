// must fail (TS2339): claims are for Complement Token; SAML responses get attributes.
/** @param {Ctx} ctx @param {Api} api */
function samlRoles(ctx, api) {
  api.v1.claims.setClaim('roles', ['admin']);
}
