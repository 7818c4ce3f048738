// panva's openid-client performing token exchange (RFC 8693) against tradeauth with
// genericGrantRequest: the library checks the token response (access_token, token_type,
// expires_in) before handing it back.
//
// Environment: TRADEAUTH_URL, CLIENT_ID, CLIENT_SECRET (a confidential client),
// SUBJECT_TOKEN, SUBJECT_TOKEN_TYPE, and optionally SCOPE, RESOURCE.
// Prints one JSON line: the token response, or {"error": code, "error_description": ...}.
import * as oc from 'openid-client';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};

const cfg = await oc.discovery(
  new URL(env('TRADEAUTH_URL')),
  env('CLIENT_ID'),
  undefined,
  oc.ClientSecretBasic(env('CLIENT_SECRET')),
  { execute: [oc.allowInsecureRequests] },
);
const params = {
  subject_token: env('SUBJECT_TOKEN'),
  subject_token_type: env('SUBJECT_TOKEN_TYPE'),
  requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
};
if (process.env.SCOPE) params.scope = process.env.SCOPE;
if (process.env.RESOURCE) params.resource = process.env.RESOURCE;
try {
  const tokens = await oc.genericGrantRequest(cfg, 'urn:ietf:params:oauth:grant-type:token-exchange', params);
  console.log(JSON.stringify(tokens));
} catch (e) {
  console.log(JSON.stringify({ error: e.error ?? e.code ?? String(e), error_description: e.error_description }));
}
