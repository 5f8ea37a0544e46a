// must fail (TS2339): Post Authentication of the internal flow has no profile setters.
/** @param {Ctx} ctx @param {Api} api */
function audit(ctx, api) {
  api.setDisplayName('x');
}
