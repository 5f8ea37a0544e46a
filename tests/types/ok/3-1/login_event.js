/**
 * Sends a login event with a random event id to a SIEM; failures are only logged.
 *
 * Flow: Internal Authentication, Trigger: Post Authentication
 */
/** @type {ActionFunction} */
function loginEvent(ctx, api) {
  const http = require('zitadel/http');
  const uuid = require('zitadel/uuid');
  const log = require('zitadel/log');
  const id = uuid.v7();
  try {
    http.fetch('https://siem.example.com/events', {
      method: 'POST',
      headers: { 'X-Api-Key': require('zitadel/secrets').get('SIEM_KEY') || 'none' },
      body: { id: id, method: ctx.v1.authMethod, request: ctx.v1.authRequest },
    });
  } catch (e) {
    log.error('SIEM: %s', e);
  }
  api.v1.user.appendMetadata('last_login_event', id);
}
