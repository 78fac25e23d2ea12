/**
 * The GoCardless sandbox counterpart's consent and bank login page (what a requisition's `link`
 * opens): a plain HTML form, no JavaScript. The username picks how the bank behaves.
 */
import { escapeHtml } from '../../web/html.ts';
import { bankPageLayout } from './authorize-page.ts';
import { GC_SANDBOX_USERNAMES } from './gocardless-data.ts';

const SCOPE_TEXT: Record<string, string> = { balances: 'your balances', details: 'your account details', transactions: 'your transactions' };

export interface GcConsentPageInput {
  institutionName: string;
  action: string;
  accessScope: string[];
  accessValidForDays: number;
  maxHistoricalDays: number;
  username?: string;
  error?: string;
}

export function gcConsentPage(p: GcConsentPageInput): string {
  const shared = p.accessScope.map((s) => SCOPE_TEXT[s] ?? s).join(', ');
  const body = `<h1>${escapeHtml(p.institutionName)}</h1>
<p>GoCardless (sandbox), on behalf of Mooring, asks to see ${escapeHtml(shared)} for ${p.accessValidForDays} days,
with up to ${p.maxHistoricalDays} days of history.</p>
${p.error === undefined ? '' : `<p class="error" role="alert">${escapeHtml(p.error)}</p>`}
<form method="post" action="${escapeHtml(p.action)}">
<label for="username">Username at the bank</label>
<input id="username" name="username" type="text" autocomplete="username" value="${escapeHtml(p.username ?? '')}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<p class="hint">This is GoCardless's sandbox counterpart. Any password works; the username picks how the bank behaves:
${GC_SANDBOX_USERNAMES.map((u) => `<code>${u}</code>`).join(', ')}.</p>
<div class="buttons">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="cancel">Cancel</button>
</div>
</form>`;
  return bankPageLayout(`${p.institutionName}: connect your account`, body);
}

export function gcErrorPage(title: string, message: string): string {
  return bankPageLayout(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`);
}
