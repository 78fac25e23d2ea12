/**
 * A minimal browser for journey tests: follows redirects by hand, keeps cookies, reads and submits
 * plain HTML forms. Mooring's pages need no JavaScript, so this is all a user's browser does there.
 */
export interface Page {
  url: string;
  status: number;
  html: string;
  location: string | null;
}

export interface Form {
  action: string;
  method: string;
  fields: Record<string, string>;
  buttons: { name: string; value: string }[];
}

const attr = (tag: string, name: string): string | undefined => {
  const m = new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i').exec(tag);
  return m === null ? undefined : decode(m[2] ?? m[3] ?? '');
};
const decode = (s: string): string => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

export function parseForms(html: string, pageUrl: string): Form[] {
  const forms: Form[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const open = m[1] ?? '';
    const inner = m[2] ?? '';
    const fields: Record<string, string> = {};
    for (const input of inner.matchAll(/<input\b[^>]*>/gi)) {
      const name = attr(input[0], 'name');
      const type = (attr(input[0], 'type') ?? 'text').toLowerCase();
      if (name !== undefined && type !== 'submit') fields[name] = attr(input[0], 'value') ?? '';
    }
    const buttons: { name: string; value: string }[] = [];
    for (const b of inner.matchAll(/<button\b[^>]*>/gi)) {
      const name = attr(b[0], 'name');
      if (name !== undefined) buttons.push({ name, value: attr(b[0], 'value') ?? '' });
    }
    forms.push({ action: new URL(attr(open, 'action') ?? pageUrl, pageUrl).toString(), method: (attr(open, 'method') ?? 'get').toLowerCase(), fields, buttons });
  }
  return forms;
}

export class Browser {
  private readonly cookies = new Map<string, string>();
  /** Every URL visited, in order (redirect hops included). */
  readonly history: string[] = [];

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private store(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (pair === undefined || eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url: string, init: { method?: string; body?: URLSearchParams } = {}): Promise<Page> {
    const target = new URL(url);
    if (target.hash !== '' && target.pathname === '/connect/callback' && init.method === undefined) {
      // A hybrid answer arrives in the URL fragment, which browsers never send: do what the relay
      // page's script does (post the fragment's parameters to the callback).
      this.history.push(url);
      const relay = await this.request(`${target.origin}${target.pathname}`);
      if (!relay.html.includes('<script')) throw new Error(`the callback did not answer the relay page: ${relay.status}\n${relay.html.slice(0, 300)}`);
      const body = new URLSearchParams(target.hash.slice(1));
      const posted = await this.request(`${target.origin}${target.pathname}`, { method: 'POST', body });
      // 307 keeps the method and the body, as a browser does.
      return posted.status === 307 && posted.location !== null ? this.request(posted.location, { method: 'POST', body }) : posted;
    }
    this.history.push(url);
    const res = await fetch(url, {
      method: init.method ?? 'GET',
      redirect: 'manual',
      headers: { cookie: this.cookieHeader(), ...(init.body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      ...(init.body !== undefined ? { body: init.body.toString() } : {}),
    });
    this.store(res);
    const location = res.headers.get('location');
    return { url, status: res.status, html: await res.text(), location: location === null ? null : new URL(location, url).toString() };
  }

  /** Follows redirects until a page that is not a redirect, or until `stopAt` matches a redirect target. */
  async follow(url: string, stopAt?: (url: string) => boolean, init?: { method?: string; body?: URLSearchParams }): Promise<Page> {
    let page = await this.request(url, init);
    for (let hops = 0; page.location !== null && hops < 20; hops += 1) {
      if (stopAt?.(page.location) === true) return page;
      // 307 and 308 keep the method and the body, as a browser does.
      page = await this.request(page.location, (page.status === 307 || page.status === 308) && init !== undefined ? init : {});
    }
    return page;
  }

  /** Submits the page's form (the first, or the one whose action matches), pressing a button. */
  async submit(page: Page, values: Record<string, string>, opts: { button?: string; actionIncludes?: string; stopAt?: (url: string) => boolean } = {}): Promise<Page> {
    const forms = parseForms(page.html, page.url);
    const form = opts.actionIncludes === undefined ? forms[0] : forms.find((f) => f.action.includes(opts.actionIncludes ?? ''));
    if (form === undefined) throw new Error(`no form on ${page.url} (status ${page.status}):\n${page.html.slice(0, 500)}`);
    const body = new URLSearchParams({ ...form.fields, ...values });
    const button = opts.button === undefined ? form.buttons[0] : form.buttons.find((b) => b.value === opts.button);
    if (button !== undefined) body.set(button.name, button.value);
    if (form.method !== 'post') {
      const target = new URL(form.action);
      for (const [k, v] of body) target.searchParams.set(k, v);
      return this.follow(target.toString(), opts.stopAt);
    }
    return this.follow(form.action, opts.stopAt, { method: 'POST', body });
  }
}
