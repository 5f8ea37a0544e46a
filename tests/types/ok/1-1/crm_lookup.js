/**
 * Looks the external user up in a CRM (API key from the organization's secrets) and stores the
 * customer number; a stable id derived from the external id is kept as well.
 *
 * Flow: External Authentication, Trigger: Post Authentication
 */
/** @type {ActionFunction} */
function crmLookup(ctx, api) {
  const http = require('zitadel/http');
  const uuid = require('zitadel/uuid');
  const key = require('zitadel/secrets').get('CRM_API_KEY');
  if (key === undefined) {
    console.warn('CRM_API_KEY is not set, skipping the lookup');
    return;
  }
  let res;
  try {
    res = http.fetch('https://crm.example.com/api/customers?email=' + encodeURIComponent(ctx.v1.externalUser.human.email), {
      method: 'GET',
      headers: { Authorization: 'Bearer ' + key, Accept: ['application/json'] },
    });
  } catch (e) {
    console.error('CRM unreachable: %s', e);
    return;
  }
  if (res.status === 200) {
    const customer = res.json();
    api.v1.user.appendMetadata('customer_number', customer.number);
  } else {
    console.info('no customer (%d): %s', res.status, res.text());
  }
  api.v1.user.appendMetadata('stable_id', uuid.v5(uuid.namespaceURL, ctx.v1.externalUser.externalId));
  api.v1.user.appendMetadata('first_seen_with', res.headers['x-request-id'] || uuid.v4());
}
