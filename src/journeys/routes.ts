/**
 * The journey pages under /connect/:uid (the OpenID provider's interaction URL), and the one fixed
 * callback every redirect-based provider returns the user to, /connect/callback.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { Type } from 'typebox';
import { pageCspWithScript } from '../http/browser-safety.ts';
import type { App } from '../http/types.ts';
import { CALLBACK_RELAY_SCRIPT, callbackRelayPage, messagePage } from './pages.ts';
import type { InteractionInfo, JourneyResponse, JourneysService } from './service.ts';

const Uid = Type.Object({ uid: Type.String({ minLength: 1, maxLength: 100 }) });
const html = { 200: Type.String(), 303: Type.Null(), 400: Type.String() };
/** What a provider sends back (query or form): code, state, id_token, response, error, … */
const ProviderAnswer = Type.Record(Type.String(), Type.String());
const RELAY_CSP = pageCspWithScript(CALLBACK_RELAY_SCRIPT);

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

  const linkExpired = (reply: FastifyReply): FastifyReply =>
    reply.code(400).type('text/html; charset=utf-8').send(messagePage('This link has expired', 'Mooring has no journey waiting for this answer from your bank. Go back to the app and start again.'));

  // The fixed callback finds the journey by state and hands the answer to the journey's own callback,
  // the path oidc-provider's interaction cookie (scoped to /connect/<uid>) is sent to.
  app.get('/connect/callback', {
    schema: { tags, summary: 'Where every redirect-based provider sends the user back (found by state)', querystring: ProviderAnswer, response: html },
  }, async (req, reply) => {
    if (Object.keys(req.query).length === 0) return reply.header('content-security-policy', RELAY_CSP).type('text/html; charset=utf-8').send(callbackRelayPage());
    const target = await deps.journeys.journeyCallbackUrl(req.query);
    if (target === null) return linkExpired(reply);
    const query = req.url.indexOf('?');
    return reply.redirect(`${target}${query < 0 ? '' : req.url.slice(query)}`, 303);
  });

  app.post('/connect/callback', {
    schema: { tags, summary: "The relay page posts a fragment response here (found by state)", body: ProviderAnswer, response: { 307: Type.Null(), 400: Type.String() } },
  }, async (req, reply) => {
    const target = await deps.journeys.journeyCallbackUrl(req.body);
    if (target === null) return linkExpired(reply);
    // 307: the browser posts the same form to the journey's callback.
    return reply.redirect(target, 307);
  });

  const callback = async (req: FastifyRequest, reply: FastifyReply, uid: string, answer: Record<string, string>): Promise<FastifyReply> => {
    if ((await interaction(req, reply, uid)) === null) return expired(reply);
    return send(req, reply, await deps.journeys.callback(uid, answer, req.ip));
  };

  app.get('/connect/:uid/callback', {
    schema: { tags, summary: "The journey's callback (from /connect/callback)", params: Uid, querystring: ProviderAnswer, response: html },
  }, async (req, reply) => callback(req, reply, req.params.uid, req.query));

  app.post('/connect/:uid/callback', {
    schema: { tags, summary: "The journey's callback, for a relayed fragment response", params: Uid, body: ProviderAnswer, response: html },
  }, async (req, reply) => callback(req, reply, req.params.uid, req.body));

  app.post('/connect/:uid/provider', {
    schema: { tags, summary: 'Submit a provider form (credentials, one-time code, asset)', params: Uid, body: Type.Record(Type.String(), Type.String({ maxLength: 500 })), response: html },
  }, async (req, reply) => {
    if ((await interaction(req, reply, req.params.uid)) === null) return expired(reply);
    return send(req, reply, await deps.journeys.providerForm(req.params.uid, req.body, req.ip));
  });
}
