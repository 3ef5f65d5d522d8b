// Spectral custom function for .spectral.yaml (rule hsrcpay-permission-in-catalog).
//
// Given an operation's `x-hsrcpay-permission` value (`resource:action`, the resource may
// itself contain colons), checks that info.x-hsrcpay-permission-catalog lists that resource
// with that action. The server enforces exactly this declaration, so a permission that is not
// in the catalog could never be granted to any key.

export default function permissionInCatalog(permission, _opts, context) {
  if (typeof permission !== 'string') return []; // hsrcpay-operation-permission reports it
  const i = permission.lastIndexOf(':');
  if (i <= 0) return [];
  const resource = permission.slice(0, i);
  const action = permission.slice(i + 1);
  const info = context.document.data && context.document.data.info;
  const catalog = info && info['x-hsrcpay-permission-catalog'];
  if (!catalog || typeof catalog !== 'object') return []; // hsrcpay-info-permission-catalog reports it
  const actions = catalog[resource];
  if (!Array.isArray(actions)) {
    return [{ message: `permission resource "${resource}" is not in info.x-hsrcpay-permission-catalog` }];
  }
  if (!actions.includes(action)) {
    return [{ message: `permission action "${action}" is not in info.x-hsrcpay-permission-catalog["${resource}"] (${actions.join(', ')})` }];
  }
  return [];
}
