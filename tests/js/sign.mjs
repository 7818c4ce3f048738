// Signs one request with the published npm `http-message-signatures` package, a second
// RFC 9421 implementation nobody on the tradeauth team wrote, for tests/api/signed.rs and
// tests/nginx/signed.sh. Same interface as tests/signers/sign.py:
//   node sign.mjs sign < request.json   -> {"headers": {...}}
// request.json: {alg, key (PEM private key, or the HMAC secret as tradeauth showed it:
// base64url), keyid, method, url, headers, body (string or null), created?, expires?,
// nonce?, label?}. The package builds the base and the Signature-Input; Content-Digest
// (RFC 9530) is computed here, as the package leaves it to its caller.
import { createHash, randomBytes } from 'node:crypto';
import { httpbis, createSigner } from 'http-message-signatures';

const input = JSON.parse(await new Promise((resolve) => {
  let text = '';
  process.stdin.on('data', (chunk) => { text += chunk; });
  process.stdin.on('end', () => resolve(text));
}));

const key = input.alg === 'hmac-sha256'
  ? Buffer.from(input.key, 'base64url')
  : input.key;
const headers = { ...(input.headers || {}) };
const fields = ['@method', '@authority', '@path', '@query'];
if (input.body !== null && input.body !== undefined) {
  const digest = createHash('sha-256').update(Buffer.from(input.body, 'utf8')).digest('base64');
  headers['content-digest'] = `sha-256=:${digest}:`;
  fields.push('content-type', 'content-digest');
}
const paramValues = {
  nonce: input.nonce || randomBytes(16).toString('base64url'),
  tag: 'tradeauth',
};
const params = ['keyid', 'alg', 'created', 'nonce', 'tag'];
if (input.created) paramValues.created = new Date(input.created * 1000);
if (input.expires) {
  paramValues.expires = new Date(input.expires * 1000);
  params.push('expires');
}
const signed = await httpbis.signMessage({
  key: createSigner(key, input.alg, input.keyid),
  name: input.label || 'bot',
  fields,
  params,
  paramValues,
}, { method: input.method, url: input.url, headers });
process.stdout.write(JSON.stringify({ headers: signed.headers }));
