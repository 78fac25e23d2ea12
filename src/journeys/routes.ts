/** The journey pages under /connect/:uid (the OpenID provider's interaction URL). */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { Type } from 'typebox';
import type { App } from '../http/types.ts';
import { messagePage } from './pages.ts';
import type { InteractionInfo, JourneyResponse, JourneysService } from './service.ts';

const Uid = Type.Object({ uid: Type.String({ minLength: 1, maxLength: 100 }) });
const html = { 200: Type.String(), 303: Type.Null(), 400: Type.String() };

export function journeyRoutes(app: App, deps: { journeys: JourneysService; oidc: Provider }): void {
  const tags = ['journeys'];

  /** The interaction this browser is in; its cookie must match the uid in the path. */
  async function interaction(req: FastifyRequest, reply: FastifyReply, uid: string): Promise<InteractionInfo | null> {
    try {
      const details = await deps.oidc.interactionDetails(req.raw, reply.raw);
      if (details.uid !== uid) return null;
      return { uid, clientId: String(details.params.client_id), params: details.params };
    } catch {
      return null;
    }
  }

  async function send(req: FastifyRequest, reply: FastifyReply, r: JourneyResponse): Promise<FastifyReply> {
    if (r.kind === 'page') return reply.code(r.status ?? 200).type('text/html; charset=utf-8').send(r.html);
    if (r.kind === 'redirect') return reply.redirect(r.url, 303);
    const url = await deps.oidc.interactionResult(req.raw, reply.raw, r.result, { mergeWithLastSubmission: false });
    return reply.redirect(url, 303);
  }

  const expired = (reply: FastifyReply): FastifyReply =>
    reply.code(400).type('text/html; charset=utf-8').send(messagePage('This page has expired', 'Go back to the app and start again.'));

  app.get('/connect/:uid', { schema: { tags, summary: "Mooring's consent page (journey start)", params: Uid, response: html } }, async (req, reply) => {
    const info = await interaction(req, reply, req.params.uid);
    if (info === null) return expired(reply);
    return send(req, reply, await deps.journeys.start(info));
  });

  app.post('/connect/:uid/consent', {
    schema: { tags, summary: 'Answer the consent page', params: Uid, body: Type.Object({ decision: Type.String() }), response: html },
  }, async (req, reply) => {
    if ((await interaction(req, reply, req.params.uid)) === null) return expired(reply);
    return send(req, reply, await deps.journeys.consent(req.params.uid, req.body.decision, req.ip));
  });

  app.get('/connect/:uid/callback', {
    schema: { tags, summary: 'Where the provider sends the user back', params: Uid, querystring: Type.Record(Type.String(), Type.String()), response: html },
  }, async (req, reply) => {
    if ((await interaction(req, reply, req.params.uid)) === null) return expired(reply);
    return send(req, reply, await deps.journeys.callback(req.params.uid, req.query, req.ip));
  });

  app.post('/connect/:uid/provider', {
    schema: { tags, summary: 'Submit a provider form (credentials, one-time code, asset)', params: Uid, body: Type.Record(Type.String(), Type.String({ maxLength: 500 })), response: html },
  }, async (req, reply) => {
    if ((await interaction(req, reply, req.params.uid)) === null) return expired(reply);
    return send(req, reply, await deps.journeys.providerForm(req.params.uid, req.body, req.ip));
  });
}
