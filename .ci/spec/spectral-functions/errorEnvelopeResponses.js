// Spectral custom function for .spectral.yaml (rule hsrcpay-error-response-envelope).
//
// Given an operation's `responses` object from the UNRESOLVED document (the rule sets
// `resolved: false`, so `$ref` strings are still visible), checks that every 4xx/5xx
// response (also the `4XX`/`5XX` ranges and `default`) has content whose every media type's
// schema is exactly `$ref: '#/components/schemas/ErrorEnvelope'`. A response that is itself a
// `$ref` (e.g. to components/responses) is followed, and the problem is reported where the
// offending schema is written, so the line number points at the right place.

const ENVELOPE = '#/components/schemas/ErrorEnvelope';
const ERROR_STATUS = /^([45](\d\d|XX)|default)$/;

function resolveLocal(root, ref) {
  if (typeof ref !== 'string' || !ref.startsWith('#/')) return undefined;
  const segs = ref
    .slice(2)
    .split('/')
    .map((s) => decodeURIComponent(s).replace(/~1/g, '/').replace(/~0/g, '~'));
  let node = root;
  for (const s of segs) {
    if (node === null || typeof node !== 'object' || !(s in node)) return undefined;
    node = node[s];
  }
  return { node, path: segs };
}

export default function errorEnvelopeResponses(responses, _opts, context) {
  if (responses === null || typeof responses !== 'object') return [];
  const root = context.document.data;
  const results = [];
  for (const [status, value] of Object.entries(responses)) {
    if (!ERROR_STATUS.test(status)) continue;
    let response = value;
    let path = [...context.path, status];
    // follow response-level $refs (bounded, to survive cycles)
    for (let hops = 0; response && typeof response === 'object' && '$ref' in response; hops++) {
      const target = hops < 10 ? resolveLocal(root, response.$ref) : undefined;
      if (!target) {
        results.push({ message: `${status} response: cannot resolve ${response.$ref}`, path: [...path, '$ref'] });
        response = undefined;
        break;
      }
      response = target.node;
      path = target.path;
    }
    if (!response || typeof response !== 'object') continue;
    const content = response.content;
    if (!content || typeof content !== 'object' || Object.keys(content).length === 0) {
      results.push({ message: `${status} response has no content; errors must answer with ${ENVELOPE}`, path });
      continue;
    }
    if (!('application/json' in content)) {
      results.push({ message: `${status} response has no application/json content (${ENVELOPE})`, path: [...path, 'content'] });
    }
    for (const [mediaType, media] of Object.entries(content)) {
      const ref = media && media.schema && media.schema.$ref;
      if (ref !== ENVELOPE) {
        results.push({
          message: `${status} response ${mediaType} schema must be $ref: '${ENVELOPE}' (found ${ref ? `'${ref}'` : 'an inline schema or none'})`,
          path: [...path, 'content', mediaType, ...(media && media.schema ? ['schema'] : [])],
        });
      }
    }
  }
  return results;
}
