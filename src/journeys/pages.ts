/**
 * The journey pages: Mooring's consent page and the forms a provider needs, plain HTML without
 * JavaScript; and the callback relay, the one page that needs a script.
 */
import type { FormField } from '../providers/provider.ts';
import { escapeHtml, renderFields, renderPage } from '../web/html.ts';
import type { JourneyKind } from './request.ts';

const WHAT_IS_SHARED = '<ul><li>your accounts and their balances</li><li>your transactions</li></ul>';

export function consentPage(p: { uid: string; kind: JourneyKind; clientName: string; providerName: string; expiresAt: Date | null }): string {
  const until = p.expiresAt === null ? 'until you withdraw it' : `until ${escapeHtml(p.expiresAt.toUTCString())}`;
  const lead: Record<JourneyKind, string> = {
    connect: `<p><strong>${escapeHtml(p.clientName)}</strong> would like to connect to <strong>${escapeHtml(p.providerName)}</strong> and see:</p>${WHAT_IS_SHARED}<p>You will be sent to ${escapeHtml(p.providerName)} to log in. Access lasts ${until}.</p>`,
    reauth: `<p><strong>${escapeHtml(p.clientName)}</strong> needs you to log in to <strong>${escapeHtml(p.providerName)}</strong> again to keep seeing:</p>${WHAT_IS_SHARED}<p>Renewed access lasts ${until}.</p>`,
    reconsent: `<p><strong>${escapeHtml(p.clientName)}</strong> asks you to keep sharing your <strong>${escapeHtml(p.providerName)}</strong> data:</p>${WHAT_IS_SHARED}<p>Your consent will last ${until}. You will not need to log in to ${escapeHtml(p.providerName)}.</p>`,
    refresh: `<p><strong>${escapeHtml(p.clientName)}</strong> needs your <strong>${escapeHtml(p.providerName)}</strong> details again to keep your data up to date.</p>`,
  };
  const title: Record<JourneyKind, string> = {
    connect: `Connect ${p.providerName}`,
    reauth: `Reconnect ${p.providerName}`,
    reconsent: `Keep sharing ${p.providerName} data`,
    refresh: `Refresh ${p.providerName}`,
  };
  return renderPage({
    title: title[p.kind],
    body: `${lead[p.kind]}
<form method="post" action="/connect/${escapeHtml(p.uid)}/consent">
  <button class="primary" type="submit" name="decision" value="allow">Allow</button>
  <button class="secondary" type="submit" name="decision" value="deny">Cancel</button>
</form>`,
  });
}

export function providerFormPage(p: { uid: string; providerName: string; fields: FormField[]; message?: string; error?: string }): string {
  const hint = p.fields.map((f) => f.hint).find((h) => h !== undefined);
  return renderPage({
    title: `${p.providerName}`,
    body: `${p.error !== undefined ? `<p class="error">${escapeHtml(p.error)}</p>` : ''}
${p.message !== undefined ? `<p>${escapeHtml(p.message)}</p>` : ''}${hint !== undefined ? `<p class="muted">${escapeHtml(hint)}</p>` : ''}
<form method="post" action="/connect/${escapeHtml(p.uid)}/provider">
${renderFields(p.fields.map((f) => ({ name: f.name, label: f.label, type: f.type })))}
  <button class="primary" type="submit">Continue</button>
</form>`,
  });
}

export function messagePage(title: string, message: string): string {
  return renderPage({ title, body: `<p>${escapeHtml(message)}</p>` });
}

/**
 * The relay's script: a hybrid (`code id_token`) or fragment response arrives in the URL fragment,
 * which the browser never sends; this posts its parameters to the server as a form, and removes
 * them from the address bar and history first.
 */
export const CALLBACK_RELAY_SCRIPT = `(function () {
  var params = new URLSearchParams(window.location.hash.slice(1));
  var form = document.getElementById('relay');
  var count = 0;
  params.forEach(function (value, name) {
    var input = document.createElement('input');
    input.type = 'hidden';
    input.name = name;
    input.value = value;
    form.appendChild(input);
    count += 1;
  });
  if (count === 0) {
    document.getElementById('nothing').hidden = false;
    return;
  }
  window.history.replaceState(null, '', window.location.pathname);
  form.submit();
})();`;

/** `GET /connect/callback` without a query: the provider's answer is in the fragment. */
export function callbackRelayPage(): string {
  return renderPage({
    title: 'Returning from your bank',
    body: `<form id="relay" method="post" action="/connect/callback"></form>
<p id="nothing" hidden>There is no answer from your bank on this page. Go back to the app and start again.</p>
<noscript><p>This page needs JavaScript to pass your bank's answer on to Mooring. Turn JavaScript on for this page and reload it, or go back to the app and start again.</p></noscript>
<script>${CALLBACK_RELAY_SCRIPT}</script>`,
  });
}