/**
 * Grants a role depending on the e-mail domain of the new user.
 *
 * Flow: Internal Authentication, Trigger: Post Creation
 * @param {Ctx} ctx
 * @param {Api} api
 */
function domainGrant(ctx, api) {
  const user = ctx.v1.getUser();
  const domain = user.preferredLoginName.split('@')[1] || '';
  if (domain === 'partner.example') {
    api.v1.appendUserGrant({ projectId: '400', projectGrantId: '401', roles: ['partner'] });
  } else {
    api.userGrants.push({ projectID: '400', roles: ['customer'] });
  }
}
