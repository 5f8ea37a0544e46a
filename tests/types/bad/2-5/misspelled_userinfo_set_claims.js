// must fail (TS2551): api.v1.userinfo.setClaims is a misspelling of setClaim.
/** @type {ActionFunction} */
function addClaims(ctx, api) {
  api.v1.userinfo.setClaims('year', 2026);
}
