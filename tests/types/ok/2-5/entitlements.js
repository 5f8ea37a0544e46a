/**
 * Asks an entitlement service which features the user has and puts them into the access token.
 *
 * Flow: Complement Token, Trigger: Pre access token creation
 */
/** @type {ActionFunction} */
function entitlements(ctx, api) {
  const http = require('zitadel/http');
  const user = ctx.v1.getUser();
  const token = require('zitadel/secrets').get('ENTITLEMENTS_TOKEN');
  try {
    const res = http.fetch('https://entitlements.example.com/v1/users/' + user.id, {
      headers: { Authorization: 'Bearer ' + token },
    });
    if (res.status === 200) {
      api.v1.claims.setClaim('features', res.json().features);
      api.v1.user.setMetadata('features_checked_at', Date.now());
    } else {
      api.v1.claims.appendLogIntoClaims('entitlements answered ' + res.status);
    }
  } catch (e) {
    api.v1.claims.appendLogIntoClaims('entitlements failed: ' + e);
  }
}
