/**
 * Records how and when the user logged in, and flags password-only logins.
 *
 * Flow: Internal Authentication, Trigger: Post Authentication
 * @param {Ctx} ctx
 * @param {Api} api
 */
function loginAudit(ctx, api) {
  if (ctx.v1.authError !== 'none') {
    console.warn('failed login: %s', ctx.v1.authError);
    return;
  }
  api.v1.user.appendMetadata('last_login_method', ctx.v1.authMethod);
  api.metadata.push({ key: 'last_login_at', value: new Date().toISOString() });
  if (ctx.v1.authMethod === 'password') {
    api.v1.user.appendMetadata('needs_mfa_enrollment', true);
  }
  console.log('login of request %s from %s', ctx.v1.authRequest.id, ctx.v1.httpRequest.url);
}
