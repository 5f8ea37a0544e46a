/**
 * Cleans up a user coming from an external IdP before it is created.
 *
 * Flow: External Authentication, Trigger: Pre Creation
 * @param {Ctx} ctx
 * @param {Api} api
 */
function normalizeNewUser(ctx, api) {
  const user = ctx.v1.user;
  const cap = (/** @type {string} */ s) => (s ? s.charAt(0).toUpperCase() + s.slice(1).toLowerCase() : s);
  api.setFirstName(cap(user.human.firstName));
  api.setLastName(cap(user.human.lastName));
  api.setNickName(user.human.nickName || cap(user.human.firstName));
  api.setDisplayName(cap(user.human.firstName) + ' ' + cap(user.human.lastName));
  if (user.human.email) {
    api.setUsername(user.human.email.toLowerCase());
    api.setEmail(user.human.email.trim());
    api.setEmailVerified(true);
  }
  if (user.human.phone) {
    api.setPhone(user.human.phone.replace(/\s+/g, ''));
    api.setPhoneVerified(false);
  }
  if (!user.human.preferredLanguage || user.human.preferredLanguage === 'und') {
    api.setPreferredLanguage('de');
  }
  if (user.human.gender === 0) {
    api.setGender('GENDER_UNSPECIFIED');
  }
  api.v1.user.appendMetadata('created_via', 'external_idp');
}
