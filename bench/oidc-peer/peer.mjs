// panva's oidc-provider as the peer of tradeauth's OAuth rows (bench/run.sh): one Node
// process, production mode, one confidential client with client credentials, and
// introspection on. Client-credentials tokens for `urn:bench:jwt` are signed JWTs (EdDSA,
// like tradeauth's default); those for `urn:bench:opaque` are opaque, because
// oidc-provider introspects only the tokens it stores.
// PORT, CLIENT_ID, CLIENT_SECRET come from the environment.
import Provider from "oidc-provider";
import { generateKeyPair, exportJWK } from "jose";

const port = Number(process.env.PORT);
const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
const jwk = { ...(await exportJWK(privateKey)), use: "sig", alg: "EdDSA", kid: "bench" };
const rs = await generateKeyPair("RS256", { extractable: true }); // ID tokens need RS256
const rsJwk = { ...(await exportJWK(rs.privateKey)), use: "sig", alg: "RS256", kid: "bench-rs" };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  ttl: { ClientCredentials: 600 },
  clients: [{
    client_id: process.env.CLIENT_ID,
    client_secret: process.env.CLIENT_SECRET,
    grant_types: ["client_credentials"],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  jwks: { keys: [rsJwk, jwk] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => "urn:bench:jwt",
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => ({
        scope: "api",
        audience: resource,
        accessTokenFormat: resource === "urn:bench:opaque" ? "opaque" : "jwt",
        jwt: { sign: { alg: "EdDSA" } },
      }),
    },
  },
});
provider.proxy = false;
provider.listen(port, "127.0.0.1");
