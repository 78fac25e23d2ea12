/**
 * The console's page shell: a header with the search box (on every page), the way back to the
 * overview and sign-out, in that keyboard order, then the page. No scripts; styles inline (the
 * page CSP allows no script at all); focus is always visible. Every interpolated text is escaped.
 */
import { escapeHtml } from '../web/html.ts';
import { CSRF_FIELD } from '../admin/session.ts';

const STYLE = `
  body { font-family: system-ui, -apple-system, sans-serif; margin: 0; color: #1d2733; line-height: 1.45; background: #f7f9fb }
  header { background: #0b3c55; color: white; padding: .6rem 1.5rem; display: flex; gap: 1.5rem; align-items: center; flex-wrap: wrap }
  header a { color: white } header .brand { font-weight: 600; letter-spacing: .02em; margin-right: auto }
  header form { display: flex; gap: .4rem; align-items: center; margin: 0 }
  header label { font-size: .9rem } header input { padding: .35rem .5rem; font-size: .95rem; width: 22rem; max-width: 60vw }
  main { max-width: 76rem; margin: 1.5rem auto; padding: 0 1.5rem }
  h1 { font-size: 1.4rem; margin: .2rem 0 1rem } h2 { font-size: 1.1rem; margin-top: 2rem }
  table { border-collapse: collapse; width: 100%; background: white } td, th { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #dde3e8; vertical-align: top }
  th { background: #eef2f5; font-weight: 600 }
  button { padding: .35rem .9rem; font-size: .95rem; cursor: pointer; border-radius: 4px; border: 1px solid #0b6e99; background: #0b6e99; color: white }
  button.secondary { background: white; color: #0b3c55; border-color: #889 }
  form.inline { display: inline; margin: 0 } label { font-weight: 500 } select, input { font-size: .95rem; padding: .3rem }
  .muted { color: #5b6773; font-size: .9rem } .error { color: #a4161a; font-weight: 500 } .ok { color: #1b6e2a; font-weight: 500 }
  .notice { background: #fff7d6; border: 1px solid #e5c84a; padding: .6rem .9rem; border-radius: 4px }
  .facts { display: grid; grid-template-columns: 12rem 1fr; gap: .25rem 1rem; background: white; padding: 1rem; border: 1px solid #dde3e8 }
  .facts dt { font-weight: 600 } .facts dd { margin: 0 }
  .actions { display: flex; gap: 1rem; flex-wrap: wrap; align-items: flex-end; margin: 1rem 0 }
  .actions form { margin: 0; display: flex; gap: .4rem; align-items: flex-end }
  code { font-size: .85rem; word-break: break-all }
  a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid #f0a202; outline-offset: 2px }
  .skip { position: absolute; left: -999px } .skip:focus { left: 1rem; top: .5rem; background: white; color: #0b3c55; padding: .3rem .6rem; z-index: 1 }
`;

export interface ConsolePageInput {
  title: string;
  /** Trusted HTML (callers escape what they interpolate). */
  body: string;
  /** The session's CSRF token (sign-out form); null on the sign-in page. */
  csrf: string | null;
  /** The search box's current text. */
  q?: string;
}

export function renderConsolePage(p: ConsolePageInput): string {
  const signedIn = p.csrf !== null;
  const header = signedIn
    ? `<header><span class="brand">Mooring console</span>
<form method="get" action="/admin/search" role="search"><label for="console-q">Search users, connections, clients</label><input id="console-q" type="search" name="q" value="${escapeHtml(p.q ?? '')}" maxlength="200" placeholder="user id, clientUserId, connection id, client" autocomplete="off"><button type="submit">Search</button></form>
<a href="/admin">Overview</a>
<form method="post" action="/admin/logout">${csrfField(p.csrf ?? '')}<button class="secondary" type="submit">Sign out</button></form></header>`
    : '<header><span class="brand">Mooring console</span></header>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(p.title)} · Mooring</title><style>${STYLE}</style></head>
<body><a class="skip" href="#main">Skip to content</a>${header}
<main id="main"><h1>${escapeHtml(p.title)}</h1>
${p.body}
</main></body></html>`;
}

export const csrfField = (token: string): string => `<input type="hidden" name="${CSRF_FIELD}" value="${escapeHtml(token)}">`;

/** A POST form of one button (and the CSRF token), e.g. "Sync now". */
export function actionForm(action: string, label: string, csrf: string, hidden: Record<string, string> = {}, cls = ''): string {
  const fields = Object.entries(hidden).map(([k, v]) => `<input type="hidden" name="${escapeHtml(k)}" value="${escapeHtml(v)}">`).join('');
  return `<form class="inline" method="post" action="${escapeHtml(action)}">${csrfField(csrf)}${fields}<button type="submit"${cls === '' ? '' : ` class="${cls}"`}>${escapeHtml(label)}</button></form>`;
}

export const link = (href: string, text: string): string => `<a href="${escapeHtml(href)}">${escapeHtml(text)}</a>`;
export const isoText = (d: Date | string | null): string => (d === null ? '—' : typeof d === 'string' ? d : d.toISOString());
export const table = (head: string[], rows: string[][]): string =>
  `<table><thead><tr>${head.map((h) => `<th scope="col">${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
