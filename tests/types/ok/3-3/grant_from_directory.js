/**
 * Asks a directory service which roles a new user gets.
 *
 * Flow: Internal Authentication, Trigger: Post Creation
 */
/** @type {ActionFunction} */
function grantFromDirectory(ctx, api) {
  const res = require('zitadel/http').fetch('https://directory.example.com/roles/' + ctx.v1.getUser().username);
  if (res.status !== 200) {
    require('zitadel/log').warn('directory answered %d', res.status);
    return;
  }
  /** @type {{project: string, roles: string[]}[]} */
  const grants = res.json();
  grants.forEach(function (g) {
    api.v1.appendUserGrant({ projectId: g.project, roles: g.roles });
  });
}
