// must fail (TS2339): zitadel/log has warn, not warning (no suggestion is offered, so the code is TS2339).
/** @param {Ctx} ctx @param {Api} api */
function grant(ctx, api) {
  require('zitadel/log').warning('no grant for %s', ctx.v1.getUser().username);
}
