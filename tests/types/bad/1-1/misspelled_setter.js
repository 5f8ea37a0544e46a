// must fail (TS2551): api.setFirstname is a misspelling of api.setFirstName.
/** @param {Ctx} ctx @param {Api} api */
function mapName(ctx, api) {
  api.setFirstname(ctx.getClaim('given_name'));
}
