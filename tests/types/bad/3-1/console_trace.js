// must fail (TS2339): the sandbox's console has log, info, debug, warn and error only.
/** @param {Ctx} ctx @param {Api} api */
function audit(ctx, api) {
  console.trace('login', ctx.v1.authMethod);
}
