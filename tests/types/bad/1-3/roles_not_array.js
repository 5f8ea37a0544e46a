// must fail (TS2322): roles is a list of role keys, not one string.
/** @param {Ctx} ctx @param {Api} api */
function grant(ctx, api) {
  api.userGrants.push({ projectID: '200', roles: 'member' });
}
