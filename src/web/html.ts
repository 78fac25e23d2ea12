/** Minimal server-rendered pages: plain HTML forms that work without JavaScript. */

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

const STYLE = `
  body { font-family: system-ui, -apple-system, sans-serif; max-width: 34rem; margin: 3rem auto; padding: 0 1rem; color: #1d2733; line-height: 1.5 }
  h1 { font-size: 1.4rem } .brand { color: #0b6e99; font-weight: 600; letter-spacing: .02em }
  form { margin: 1.5rem 0 } label { display: block; margin: .8rem 0 .2rem; font-weight: 500 }
  input[type=text], input[type=password] { width: 100%; padding: .5rem; font-size: 1rem; box-sizing: border-box }
  button { padding: .55rem 1.2rem; font-size: 1rem; margin: 1rem .5rem 0 0; cursor: pointer }
  button.primary { background: #0b6e99; color: white; border: 0; border-radius: 4px }
  button.secondary { background: white; border: 1px solid #888; border-radius: 4px }
  .muted { color: #5b6773; font-size: .9rem } .error { color: #a4161a; font-weight: 500 }
  table { border-collapse: collapse; width: 100% } td, th { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #ddd }
  ul { padding-left: 1.2rem }
`;

export interface PageInput {
  title: string;
  /** Trusted HTML (callers escape what they interpolate). */
  body: string;
  brand?: string;
}

export function renderPage(p: PageInput): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(p.title)}</title><style>${STYLE}</style></head>
<body><div class="brand">${escapeHtml(p.brand ?? 'Mooring')}</div><h1>${escapeHtml(p.title)}</h1>
${p.body}
</body></html>`;
}

export interface FormFieldInput {
  name: string;
  label: string;
  type: 'text' | 'password' | 'hidden';
  value?: string;
}

export function renderFields(fields: FormFieldInput[]): string {
  return fields
    .map((f) =>
      f.type === 'hidden'
        ? `<input type="hidden" name="${escapeHtml(f.name)}" value="${escapeHtml(f.value ?? '')}">`
        : `<label for="f-${escapeHtml(f.name)}">${escapeHtml(f.label)}</label><input id="f-${escapeHtml(f.name)}" type="${f.type}" name="${escapeHtml(f.name)}" value="${escapeHtml(f.value ?? '')}" autocomplete="off">`,
    )
    .join('\n');
}
