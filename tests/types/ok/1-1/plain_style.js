/**
 * Upstream ZITADEL style without annotations (parameters are not checked in JavaScript, but the
 * modules and globals still are).
 *
 * Flow: External Authentication, Trigger: Post Authentication
 */
function setVerified(ctx, api) {
  let log = require("zitadel/log");
  if (ctx.getClaim("email_verified")) {
    api.setEmailVerified(true);
  }
  log.log("access token present: %s", ctx.accessToken !== "");
}
