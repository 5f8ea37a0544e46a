// must fail (TS2339): zitadel/uuid has v1, v3, v4, v5 and v7, no v6.
/** @param {Ctx} ctx @param {Api} api */
function grant(ctx, api) {
  const id = require('zitadel/uuid').v6();
  api.userGrants.push({ projectID: id, roles: [] });
}
