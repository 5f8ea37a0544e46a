// must fail (TS2339): user grants are added in Post Creation, not in Pre Creation.
/** @param {Ctx} ctx @param {Api} api */
function grant(ctx, api) {
  api.v1.appendUserGrant({ projectId: '1', roles: ['member'] });
}
