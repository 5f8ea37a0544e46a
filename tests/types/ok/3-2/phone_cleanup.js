/**
 * Normalizes phone numbers to E.164 for Swiss numbers.
 *
 * Flow: Internal Authentication, Trigger: Pre Creation
 */
/** @type {ActionFunction} */
function phoneCleanup(ctx, api) {
  const phone = ctx.v1.user.human.phone;
  if (!phone) return;
  const digits = phone.replace(/[^0-9+]/g, '');
  api.setPhone(digits.indexOf('0') === 0 ? '+41' + digits.substring(1) : digits);
  api.setPhoneVerified(false);
  api.setFirstName(ctx.v1.user.human.firstName.trim());
  api.setLastName(ctx.v1.user.human.lastName.trim());
  api.setNickName('');
  api.setEmail(ctx.v1.user.human.email.toLowerCase());
}
