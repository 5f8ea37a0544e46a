/**
 * Gives every new user a stable legacy id and a default plan; the request's user agent is noted.
 *
 * Flow: External Authentication, Trigger: Pre Creation
 * (An async action: the runtime waits for its Promise. `@type {ActionFunction}` cannot type an
 * async function, so its parameters are annotated one by one.)
 * @param {Ctx} ctx
 * @param {Api} api
 */
async function signupDefaults(ctx, api) {
  const uuid = require('zitadel/uuid');
  api.setGender(3);
  api.metadata.push({ key: 'legacy_id', value: uuid.v5(uuid.namespaceDNS, ctx.v1.user.username + '.legacy.example.com') });
  api.metadata.push({ key: 'plan', value: { name: 'free', seats: 1 } });
  const agent = ctx.v1.httpRequest.headers && ctx.v1.httpRequest.headers['user-agent'];
  if (agent) {
    api.v1.user.appendMetadata('signup_agent', String(agent));
  }
  console.debug('auth request %j', ctx.v1.authRequest);
}
