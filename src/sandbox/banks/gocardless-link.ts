/**
 * The GoCardless sandbox counterpart's consent page, where a requisition's `link` leads: GET shows
 * it (requisition GC), POST approves (UA → LN, the agreement accepted, the accounts made; or RJ for
 * `user_rejected`, UA left for `user_unfinished`) or cancels, and sends the user back to the
 * requisition's `redirect` with `?ref=<reference>` (`&error=…&details=…` on cancel).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { gcAccountId, gcBehaviourFor, institutionById } from './gocardless-data.ts';
import { Id, LINK_PREFIX } from './gocardless-http.ts';
import { gcConsentPage, gcErrorPage } from './gocardless-page.ts';
import type { gcSandboxStore, GcRequisitionRow } from './gocardless-store.ts';
import type { SandboxBankDeps } from './http.ts';

const LinkForm = Type.Object({ username: Type.Optional(Type.String()), password: Type.Optional(Type.String()), decision: Type.Optional(Type.String()) });

const html = (reply: FastifyReply): FastifyReply => reply.type('text/html; charset=utf-8');

export async function linkRoutes(app: FastifyInstance, deps: SandboxBankDeps, store: ReturnType<typeof gcSandboxStore>): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const page = async (id: string) => {
    const q = await store.requisition(id);
    const agreement = q === null ? null : await store.agreement(q.agreementId);
    const institution = q === null ? undefined : institutionById(q.institutionId);
    if (q === null || agreement === null || institution === undefined) return null;
    return { q, agreement, institution };
  };
  const back = (q: GcRequisitionRow, extra: Record<string, string> = {}): string => {
    const url = new URL(q.redirect);
    url.searchParams.set('ref', q.reference ?? q.id);
    for (const [k, v] of Object.entries(extra)) url.searchParams.set(k, v);
    return url.toString();
  };
  const reused = (reply: FastifyReply): FastifyReply =>
    html(reply).status(400).send(gcErrorPage('This link has already been used', 'RequisitionLinkReused: this link has already been used. Go back to the application and start again.'));

  r.get(`${LINK_PREFIX}/:id/`, { schema: { params: Id } }, async (req, reply) => {
    const p = await page(req.params.id);
    if (p === null) return html(reply).status(404).send(gcErrorPage('Not found', 'This link does not exist.'));
    if (!(await store.setStatus(p.q.id, ['CR', 'GC'], 'GC'))) return reused(reply);
    return html(reply).send(gcConsentPage({
      institutionName: p.institution.name, action: `${LINK_PREFIX}/${p.q.id}/`, accessScope: p.agreement.accessScope,
      accessValidForDays: p.agreement.accessValidForDays, maxHistoricalDays: p.agreement.maxHistoricalDays,
    }));
  });

  r.post(`${LINK_PREFIX}/:id/`, { schema: { params: Id, body: LinkForm } }, async (req, reply) => {
    const p = await page(req.params.id);
    if (p === null) return html(reply).status(404).send(gcErrorPage('Not found', 'This link does not exist.'));
    if (p.q.status !== 'GC') return reused(reply);
    if (req.body.decision === 'cancel') return reply.redirect(back(p.q, { error: 'UserCancelledSession', details: 'User cancelled the session.' }), 303);
    const username = (req.body.username ?? '').trim();
    if (username === '') {
      return html(reply).status(400).send(gcConsentPage({
        institutionName: p.institution.name, action: `${LINK_PREFIX}/${p.q.id}/`, accessScope: p.agreement.accessScope,
        accessValidForDays: p.agreement.accessValidForDays, maxHistoricalDays: p.agreement.maxHistoricalDays, error: 'Enter your username.',
      }));
    }
    const behaviour = gcBehaviourFor(username);
    await store.setStatus(p.q.id, ['GC'], 'UA');
    if (behaviour === 'user_rejected') {
      await store.setStatus(p.q.id, ['UA'], 'RJ');
      return reply.redirect(back(p.q), 303);
    }
    if (behaviour === 'user_unfinished') return reply.redirect(back(p.q), 303);
    const accountIds = [0, 1].map((position) => gcAccountId(p.q.id, position));
    if (!(await store.link(p.q.id, { username, behaviour, now: deps.clock.now(), accountIds }))) return reused(reply);
    return reply.redirect(back(p.q), 303);
  });
}
