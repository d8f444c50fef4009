// A real OpenID provider (panva/oidc-provider) for tests/oidc.rs, on loopback.
//
//   node provider.mjs PORT
//
// Issuer http://127.0.0.1:PORT; discovery at /.well-known/openid-configuration, keys
// at /jwks. Each start generates a fresh RS256 key with a new kid, so restarting on
// the same port is a key rotation. Clients use client_credentials with a resource
// indicator; access tokens are JWTs (RFC 9068) whose `aud` is the resource, with a
// Keycloak-like `preferred_username` and `realm_access.roles` added per client.
// Prints "ready ISSUER" once listening.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node provider.mjs PORT');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signing = {
  ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig',
};

// Who each client speaks for (client_credentials: one client per phone).
const people = {
  'alice-phone': { preferred_username: 'alice', realm_access: { roles: ['sip-user'] } },
  'bob-phone': { preferred_username: 'bob', realm_access: { roles: ['watcher'] } },
  'mallory-phone': { preferred_username: 'mallory', realm_access: { roles: ['sip-user'] } },
};

const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_post',
});

const provider = new Provider(issuer, {
  clients: Object.keys(people).map(client),
  jwks: { keys: [signing] },
  cookies: { keys: [randomUUID()] },
  ttl: { ClientCredentials: 300 },
  scopes: ['openid', 'sip.register', 'presence.read', 'presence.write'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Any resource is accepted; it becomes the token's audience.
      getResourceServerInfo: (_ctx, resource) => ({
        scope: 'sip.register presence.read presence.write',
        audience: resource,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: (_ctx, token) => people[token.clientId],
});
provider.proxy = false;

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer} ${signing.kid}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
