/**
 * Adds the user's roles and display name as SAML attributes.
 *
 * Flow: Complement SAMLResponse, Trigger: Pre SAMLResponse creation
 * @param {Ctx} ctx
 * @param {Api} api
 */
function samlRoles(ctx, api) {
  const user = ctx.v1.getUser();
  /** @type {string[]} */
  const roles = [];
  ctx.v1.user.grants.grants.forEach(function (g) {
    g.roles.forEach(function (r) { roles.push(g.projectName + ':' + r); });
  });
  api.v1.attributes.setCustomAttribute('Roles', 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic', ...roles);
  api.v1.attributes.setCustomAttribute('DisplayName', '', user.human.displayName);
}
