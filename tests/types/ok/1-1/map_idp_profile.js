/**
 * Maps the claims of an OIDC identity provider onto the user ZITADEL is about to link or create,
 * and keeps the provider's groups as metadata.
 *
 * Flow: External Authentication, Trigger: Post Authentication
 * @param {Ctx} ctx
 * @param {Api} api
 */
function mapIdpProfile(ctx, api) {
  if (ctx.v1.authError !== 'none') {
    return;
  }
  const log = require('zitadel/log');
  const firstName = ctx.getClaim('given_name');
  const lastName = ctx.getClaim('family_name');
  if (firstName) api.setFirstName(firstName);
  if (lastName) api.setLastName(lastName);
  api.setDisplayName([firstName, lastName].filter(Boolean).join(' '));
  api.setNickName(ctx.v1.externalUser.human.nickName || String(firstName));
  api.setPreferredUsername(ctx.v1.externalUser.preferredUsername.toLowerCase());
  api.setPreferredLanguage(ctx.getClaim('locale') || 'en');
  const email = ctx.getClaim('email');
  if (email) {
    api.setEmail(email);
    api.setEmailVerified(ctx.getClaim('email_verified') === true);
  }
  const phone = ctx.getClaim('phone_number');
  if (phone) {
    api.setPhone(phone);
    api.setPhoneVerified(false);
  }
  const claims = JSON.parse(ctx.claimsJSON());
  if (Array.isArray(claims.groups)) {
    api.v1.user.appendMetadata('idp_groups', claims.groups);
  }
  api.metadata.push({ key: 'idp', value: ctx.v1.providerInfo.name });
  api.metadata.forEach(function (m) {
    if (m.key === 'login_count') m.value = (m.value || 0) + 1;
  });
  log.info('mapped %s from %s (%d org metadata entries)', ctx.v1.externalUser.externalId,
    ctx.v1.externalUser.externalIdpId, ctx.v1.org.getMetadata().count);
}
