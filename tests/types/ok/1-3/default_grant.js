/**
 * Gives every user who registers through an external identity provider a default role.
 *
 * Flow: External Authentication, Trigger: Post Creation
 * @param {Ctx} ctx
 * @param {Api} api
 */
function addGrant(ctx, api) {
  api.userGrants.push({
    projectID: '200000000000000500',
    roles: ['member'],
  });
  const user = ctx.v1.getUser();
  if (user.human && user.human.email.endsWith('@acme.example')) {
    api.v1.appendUserGrant({ projectId: '200000000000000500', roles: ['employee'] });
  }
}
