import type { FastifyInstance } from 'fastify';
import type Provider from 'oidc-provider';
import { storeRequestObject } from './request-uri.ts';

/** `POST /request` (Content-Type: application/jws): answers 201 with the request URI as plain text. */
export async function requestObjectRoutes(app: FastifyInstance, deps: { oidc: Provider; issuer: string }): Promise<void> {
  await app.register(async (scope) => {
    scope.addContentTypeParser(['application/jws', 'application/jwt', 'text/plain'], { parseAs: 'string', bodyLimit: 64_000 }, (_req, body, done) => done(null, body));
    scope.post('/request', {
      schema: {
        tags: ['auth requests'],
        summary: 'Store a signed request object; answers a request_uri for the authorisation endpoint',
        consumes: ['application/jws'],
        body: { type: 'string', minLength: 1 },
        response: { 201: { type: 'string' } },
      },
    }, async (req, reply) => {
      const uri = await storeRequestObject(deps.oidc, deps.issuer, String(req.body));
      return reply.code(201).type('text/plain').send(uri);
    });
  });
}
