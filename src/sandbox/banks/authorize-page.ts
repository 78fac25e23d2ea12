/**
 * The Open Banking sandbox bank's login and approval page: a plain HTML form, no JavaScript.
 */
import { escapeHtml } from '../../web/html.ts';
import { SANDBOX_USERNAMES } from './behaviours.ts';

/** The frame of every sandbox bank's own pages (their look, not Mooring's). */
export const bankPageLayout = (title: string, body: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 2rem auto; padding: 0 1rem; color: #1b1f24; }
label { display: block; margin-top: 1rem; font-weight: 600; }
input { width: 100%; padding: .5rem; font-size: 1rem; box-sizing: border-box; }
.buttons { margin-top: 1.5rem; display: flex; gap: 1rem; }
button { padding: .6rem 1.2rem; font-size: 1rem; }
.error { color: #b00020; }
.hint { color: #57606a; font-size: .9rem; }
</style>
</head>
<body>
${body}
</body>
</html>
`;

const PERMISSION_TEXT: Record<string, string> = {
  ReadAccountsBasic: 'your account names and types',
  ReadAccountsDetail: 'your account numbers and sort codes',
  ReadBalances: 'your balances',
  ReadTransactionsBasic: 'your transactions',
  ReadTransactionsDetail: 'the details of your transactions',
};

export interface LoginPageInput {
  bankName: string;
  /** Where the form posts (the interaction's own URL). */
  action: string;
  permissions: string[];
  expiresAt: Date | null;
  username?: string;
  error?: string;
}

export function loginPage(p: LoginPageInput): string {
  const shared = [...new Set(p.permissions.map((x) => PERMISSION_TEXT[x]).filter((x): x is string => x !== undefined))];
  const body = `<h1>${escapeHtml(p.bankName)}</h1>
<p>Mooring is asking to see ${escapeHtml(shared.join(', ') || 'your accounts')}${
    p.expiresAt === null ? '' : ` until ${escapeHtml(p.expiresAt.toISOString().slice(0, 10))}`
  }.</p>
${p.error === undefined ? '' : `<p class="error" role="alert">${escapeHtml(p.error)}</p>`}
<form method="post" action="${escapeHtml(p.action)}">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username" value="${escapeHtml(p.username ?? '')}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<p class="hint">This is a sandbox bank. Any password works; the username picks how the bank behaves:
${SANDBOX_USERNAMES.map((u) => `<code>${u}</code>`).join(', ')}.</p>
<div class="buttons">
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="cancel">Cancel</button>
</div>
</form>`;
  return bankPageLayout(`${p.bankName}: log in`, body);
}

export function errorPage(title: string, message: string): string {
  return bankPageLayout(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`);
}
