// must fail (TS2339): SAML attributes cannot be set while complementing a token.
/** @param {Ctx} ctx @param {Api} api */
function attr(ctx, api) {
  api.v1.attributes.setCustomAttribute('Role', '', 'admin');
}
