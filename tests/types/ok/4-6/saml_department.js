/**
 * Adds the department (user metadata) and the organization's cost center (organization metadata).
 *
 * Flow: Complement SAMLResponse, Trigger: Pre SAMLResponse creation
 */
/** @type {ActionFunction} */
function samlDepartment(ctx, api) {
  const find = function (/** @type {MetadataList} */ list, /** @type {string} */ key) {
    const m = list.metadata.find(function (item) { return item.key === key; });
    return m ? String(m.value) : undefined;
  };
  const department = find(ctx.v1.user.getMetadata(), 'department');
  if (department) {
    api.v1.attributes.setCustomAttribute('Department', '', department);
  }
  const costCenter = find(ctx.v1.org.getMetadata(), 'cost_center');
  if (costCenter) {
    api.v1.attributes.setCustomAttribute('CostCenter', '', costCenter, 'default');
  }
  api.v1.user.setMetadata('last_saml_login', new Date().toISOString());
}
