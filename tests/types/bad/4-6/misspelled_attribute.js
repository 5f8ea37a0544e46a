// must fail (TS2551): the function is setCustomAttribute, not setCustomAttributes.
/** @param {Ctx} ctx @param {Api} api */
function samlRoles(ctx, api) {
  api.v1.attributes.setCustomAttributes('Roles', '', 'admin');
}
