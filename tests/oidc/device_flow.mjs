// panva's openid-client as a terminal tool using the device authorization grant (RFC
// 8628) against tradeauth: initiateDeviceAuthorization, then pollDeviceAuthorizationGrant
// (which honours `interval`, `authorization_pending` and `slow_down`, and validates the
// ID token: signature against the JWKS, iss, aud, azp, exp, iat).
//
// Environment: TRADEAUTH_URL (the issuer), CLIENT_ID (a public client), SCOPE.
// Prints one JSON line with the device authorization response (the test drives the
// /device page with it), then one JSON line with the outcome: the token response and the
// ID token's claims, or {"error": code}.
import * as oc from 'openid-client';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};

const cfg = await oc.discovery(new URL(env('TRADEAUTH_URL')), env('CLIENT_ID'), undefined, oc.None(), {
  execute: [oc.allowInsecureRequests],
});
const device = await oc.initiateDeviceAuthorization(cfg, { scope: env('SCOPE') });
console.log(JSON.stringify(device));
try {
  const tokens = await oc.pollDeviceAuthorizationGrant(cfg, device);
  console.log(JSON.stringify({ tokens, claims: tokens.claims() ?? null }));
} catch (e) {
  console.log(JSON.stringify({ error: e.error ?? e.code ?? String(e) }));
}
