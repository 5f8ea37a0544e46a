// must fail (TS2339): zitadel/log has log, info, debug, warn and error, no trace.
/** @param {Ctx} ctx @param {Api} api */
function traceLogin(ctx, api) {
  require('zitadel/log').trace('login of %s', ctx.v1.externalUser.externalId);
}
