/**
 * Tells a webhook about the new user; the webhook's token is an action secret.
 *
 * Flow: External Authentication, Trigger: Post Creation
 */
/** @type {ActionFunction} */
function welcomeWebhook(ctx, api) {
  const { fetch } = require('zitadel/http');
  const secrets = require('zitadel/secrets');
  const user = ctx.v1.getUser();
  const res = fetch('https://hooks.example.com/welcome', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Token': secrets.get('WEBHOOK_TOKEN') || '' },
    body: { id: user.id, loginNames: user.loginNames, created: user.creationDate },
  });
  if (res.status >= 300) {
    throw new Error('webhook answered ' + res.status + ': ' + res.body);
  }
  api.userGrants.push({ projectId: '300', projectGrantId: '301', roles: ['trial'] });
}
