/**
 * What keeps Mooring's HTML pages safe in a browser: no framing by other sites (clickjacking), a
 * content security policy for pages that need no scripts (and, for the one page that runs a
 * script, a policy that allows that script only), and no form posts from other sites (CSRF)
 * to the journey and operator pages.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { renderPage } from '../web/html.ts';

/** Server-rendered pages use inline styles only: no scripts, no frames, no plugins. */
export const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; base-uri 'none'; frame-ancestors 'none'";

/** PAGE_CSP that also lets the page run one inline script, exactly `script` (by its hash), and no other. */
export function pageCspWithScript(script: string): string {
  return `${PAGE_CSP}; script-src 'sha256-${createHash('sha256').update(script, 'utf8').digest('base64')}'`;
}
/** The API reference (/docs) runs its own scripts; it still must not be framed. */
const DOCS_CSP = "frame-ancestors 'none'";

/** Paths of Mooring's own browser forms, whose POSTs must come from Mooring's own pages. */
const FORM_PATHS = [/^\/connect\//, /^\/admin(?:\/|$)/];

/**
 * Whether a browser request comes from a page of `publicOrigin`. Sec-Fetch-Site (set by the browser,
 * not by page scripts) decides where sent; older browsers are judged by Origin against PUBLIC_URL.
 * Requests with neither header pass: they do not come from a browser, so they are not CSRF.
 */
export function sameOriginRequest(headers: FastifyRequest['headers'], publicOrigin: string): boolean {
  const site = headers['sec-fetch-site'];
  if (typeof site === 'string') return site === 'same-origin' || site === 'none';
  const origin = headers.origin;
  return typeof origin !== 'string' || origin === publicOrigin;
}

/** The path of `url`, percent-decoded (as the router decodes it); undecodable: as sent. */
function decodedPath(url: string): string {
  const path = url.split('?')[0] ?? '';
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function refuse(reply: FastifyReply): FastifyReply {
  return reply.code(403).type('text/html; charset=utf-8').send(renderPage({
    title: 'Request refused',
    body: '<p>This form was sent from another website, so Mooring did not act on it.</p><p class="muted">Go back to the app you came from and start again from its link.</p>',
  }));
}

export function registerBrowserSafety(app: FastifyInstance, publicUrl: string): void {
  const publicOrigin = new URL(publicUrl).origin;
  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'POST') return;
    // The route the request reached, not the raw URL: `/%61dmin/...` routes to /admin too.
    const path = req.routeOptions.url ?? decodedPath(req.url);
    if (!FORM_PATHS.some((p) => p.test(path))) return;
    if (!sameOriginRequest(req.headers, publicOrigin)) return refuse(reply);
  });
  app.addHook('onSend', async (req, reply, payload) => {
    const type = reply.getHeader('content-type');
    if (typeof type === 'string' && type.startsWith('text/html')) {
      reply.header('x-frame-options', 'DENY');
      reply.header('x-content-type-options', 'nosniff');
      // Not no-referrer: with it browsers send `Origin: null` on the pages' own form posts.
      reply.header('referrer-policy', 'same-origin');
      // A page that runs a script of its own (the callback relay) has set its policy already (pageCspWithScript).
      if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', req.url.startsWith('/docs') ? DOCS_CSP : PAGE_CSP);
    }
    return payload;
  });
}
