/**
 * Adds the user's roles per project and the organization's tier to the userinfo.
 *
 * Flow: Complement Token, Trigger: Pre Userinfo creation
 * @param {Ctx} ctx
 * @param {Api} api
 */
function customClaims(ctx, api) {
  const user = ctx.v1.getUser();
  /** @type {{[project: string]: string[]}} */
  const roles = {};
  ctx.v1.user.grants.grants.forEach(function (grant) {
    roles[grant.projectName || grant.projectId] = grant.roles;
    const plan = grant.getOrgMetadata().metadata.find(function (m) { return m.key === 'plan'; });
    if (plan) api.v1.claims.appendLogIntoClaims('grant ' + grant.id + ' on plan ' + plan.value);
  });
  api.v1.claims.setClaim('roles_by_project', roles);
  api.v1.claims.setClaim('grant_count', ctx.v1.user.grants.count);
  const tier = ctx.v1.org.getMetadata().metadata.filter(function (m) { return m.key === 'tier'; })[0];
  if (tier) api.v1.userinfo.setClaim('org_tier', tier.value);
  if (!ctx.v1.claims['email'] && user.human) {
    api.v1.claims.setClaim('email', user.human.email);
  }
  api.v1.user.setMetadata('last_userinfo', new Date().toISOString());
}
