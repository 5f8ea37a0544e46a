// must fail (TS2551): the array is api.userGrants.
/** @param {Ctx} ctx @param {Api} api */
function grant(ctx, api) {
  api.userGrant.push({ projectID: '1', roles: ['member'] });
}
