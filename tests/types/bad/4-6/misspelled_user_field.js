// must fail (TS2551): the field is human.firstName.
/** @param {Ctx} ctx @param {Api} api */
function samlName(ctx, api) {
  api.v1.attributes.setCustomAttribute('GivenName', '', ctx.v1.getUser().human.firstname);
}
