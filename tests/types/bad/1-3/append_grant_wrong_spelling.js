// must fail (TS2561): appendUserGrant needs projectId; with projectID only it throws a TypeError at run time.
/** @param {Ctx} ctx @param {Api} api */
function grant(ctx, api) {
  api.v1.appendUserGrant({ projectID: '200', roles: ['member'] });
}
