/**
 * Copies every user metadata entry whose key starts with "claim_" into the userinfo.
 *
 * Flow: Complement Token, Trigger: Pre Userinfo creation
 */
/** @type {ActionFunction} */
function metadataClaims(ctx, api) {
  const log = require('zitadel/log');
  const md = ctx.v1.user.getMetadata();
  md.metadata.forEach(function (m) {
    if (m.key.indexOf('claim_') === 0) {
      api.v1.userinfo.setClaim(m.key.substring(6), m.value);
    }
  });
  log.debug('%i metadata entries, %s', md.count, JSON.stringify(ctx.v1.claims));
}
