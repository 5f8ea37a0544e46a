/**
 * Defaults for users registering with a username and password.
 *
 * Flow: Internal Authentication, Trigger: Pre Creation
 * @param {Ctx} ctx
 * @param {Api} api
 */
function registrationDefaults(ctx, api) {
  const human = ctx.v1.user.human;
  if (human.email && human.email.endsWith('@acme.example')) {
    api.setEmailVerified(true);
    api.setUsername(human.email.split('@')[0]);
  }
  if (!human.displayName) {
    api.setDisplayName(human.firstName + ' ' + human.lastName);
  }
  api.setPreferredLanguage(human.preferredLanguage || 'en');
  api.setGender(human.gender);
  api.metadata.push({ key: 'registered_at', value: Date.now() });
  api.v1.user.appendMetadata('terms_version', '2024-05');
}
