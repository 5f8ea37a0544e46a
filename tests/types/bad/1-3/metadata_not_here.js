// must fail (TS2339): Post Creation has no api.metadata (it adds user grants only).
/** @param {Ctx} ctx @param {Api} api */
function note(ctx, api) {
  api.metadata.push({ key: 'created', value: true });
}
