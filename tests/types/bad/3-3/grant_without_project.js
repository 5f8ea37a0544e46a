// must fail (TS2345): appendUserGrant needs a projectId (the runtime throws a TypeError without it).
/** @param {Ctx} ctx @param {Api} api */
function grant(ctx, api) {
  api.v1.appendUserGrant({ roles: ['member'] });
}
