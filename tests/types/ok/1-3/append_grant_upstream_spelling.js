// must pass: appendUserGrant also takes upstream's spelling of the project fields.
/** @param {Ctx} ctx @param {Api} api */
function grant(ctx, api) {
  api.v1.appendUserGrant({ projectID: '200', projectGrantID: '201', roles: ['member'] });
}
