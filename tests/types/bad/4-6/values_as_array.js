// must fail (TS2345): attribute values are passed one by one (spread the array); an array would become one "a,b" value.
/** @param {Ctx} ctx @param {Api} api */
function samlRoles(ctx, api) {
  api.v1.attributes.setCustomAttribute('Roles', '', ctx.v1.user.grants.grants[0].roles);
}
