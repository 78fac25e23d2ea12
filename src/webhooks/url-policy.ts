/**
 * Which webhook URLs Mooring will call (SPEC section 9): https to a globally routable address; private
 * or loopback addresses only when the operator allows them (sandbox mode allows loopback) —
 * otherwise webhooks could probe the operator's network. Plain http carries the signed payloads
 * unencrypted, so it is allowed only to those allowed loopback or private addresses, never to a
 * public one. IPv4 addresses hidden in IPv6 forms (mapped, translated, compatible,
 * NAT64, 6to4, Teredo, ISATAP) are unwrapped first. The check runs at registration, and again
 * inside every delivery's DNS lookup, so the connection goes to the address that was checked (no
 * rebinding between check and use).
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';

export interface UrlPolicy {
  allowPrivate: boolean;
  allowLoopback: boolean;
}

export type UrlVerdict = { ok: true } | { ok: false; reason: string };
export type AddressClass = 'public' | 'loopback' | 'private';

function v4Class(ip: string): AddressClass {
  const [a = 0, b = 0, c = 0] = ip.split('.').map(Number);
  if (a === 127) return 'loopback';
  const isPrivate =
    a === 0 || a === 10 || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) || (a === 192 && b === 0) || (a === 192 && b === 88 && c === 99) || (a === 198 && (b === 18 || b === 19)) || a >= 224;
  return isPrivate ? 'private' : 'public';
}

/** The 8 groups of an IPv6 address as numbers. */
function v6Groups(ip: string): number[] {
  let text = ip.toLowerCase().split('%')[0] ?? '';
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4Tail?.[1] !== undefined) {
    const [a = 0, b = 0, c = 0, d = 0] = v4Tail[1].split('.').map(Number);
    text = `${text.slice(0, -v4Tail[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

/**
 * An IPv4 address carried by a tunnel form (6to4, Teredo, ISATAP) reaches that IPv4 host through a
 * relay or tunnel interface, never as a local receiver: a public one stays public, anything else
 * is private (not loopback, so sandbox mode does not allow it either).
 */
const tunnelled = (...v4: string[]): AddressClass => (v4.every((ip) => v4Class(ip) === 'public') ? 'public' : 'private');

export function classifyAddress(ip: string): AddressClass {
  if (net.isIPv4(ip)) return v4Class(ip);
  const g = v6Groups(ip);
  const at = (i: number): number => g[i] ?? 0;
  const embeddedV4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zeros = (n: number): boolean => g.slice(0, n).every((x) => x === 0);
  if (zeros(7) && g[7] === 1) return 'loopback';
  if (zeros(5) && g[5] === 0xffff) return v4Class(embeddedV4(at(6), at(7))); // ::ffff:a.b.c.d (mapped)
  if (zeros(4) && g[4] === 0xffff && g[5] === 0) return v4Class(embeddedV4(at(6), at(7))); // ::ffff:0:a.b.c.d (translated)
  if (zeros(6)) return zeros(8) ? 'private' : v4Class(embeddedV4(at(6), at(7))); // ::a.b.c.d (compatible)
  if (g[0] === 0x64 && g[1] === 0xff9b) return g[2] === 0 ? v4Class(embeddedV4(at(6), at(7))) : 'private'; // NAT64; 64:ff9b:1::/48 is local-use
  if (g[0] === 0x2002) return tunnelled(embeddedV4(at(1), at(2))); // 6to4: 2002:aabb:ccdd::/48
  // Teredo: 2001:0::/32, the server's IPv4 in groups 2-3 and the client's, bits inverted, in groups 6-7.
  if (g[0] === 0x2001 && g[1] === 0) return tunnelled(embeddedV4(at(2), at(3)), embeddedV4(~at(6) & 0xffff, ~at(7) & 0xffff));
  // ISATAP interface identifiers (…:0:5efe:a.b.c.d, …:200:5efe:a.b.c.d) under any prefix.
  if ((at(4) & 0xfdff) === 0 && g[5] === 0x5efe) return tunnelled(embeddedV4(at(6), at(7)));
  // Documentation (2001:db8::/32, 3fff::/20), benchmarking (2001:2::/48) and ORCHID (2001:10::/28, 2001:20::/28): not routable.
  if ((g[0] === 0x2001 && (g[1] === 0xdb8 || (g[1] === 2 && g[2] === 0) || (at(1) & 0xfff0) === 0x10 || (at(1) & 0xfff0) === 0x20)) || (at(0) & 0xfff0) === 0x3ff0) {
    return 'private';
  }
  // Only global unicast (2000::/3) is public; ULA, link-local, site-local, multicast are not.
  return (at(0) & 0xe000) === 0x2000 ? 'public' : 'private';
}

/** Whether a webhook may be sent to `ip`; `plainHttp`: over http, which a public address never gets. */
export function addressAllowed(ip: string, policy: UrlPolicy, plainHttp = false): UrlVerdict {
  const kind = classifyAddress(ip);
  if (kind === 'public') return plainHttp ? { ok: false, reason: `url must use https to a public address (${ip}); http is allowed only to a loopback address in sandbox mode, or to a private one with MOORING_WEBHOOK_ALLOW_PRIVATE=true` } : { ok: true };
  if (policy.allowPrivate) return { ok: true };
  if (kind === 'loopback' && policy.allowLoopback) return { ok: true };
  return { ok: false, reason: `the host resolves to a ${kind} address (${ip}); set MOORING_WEBHOOK_ALLOW_PRIVATE=true to allow it` };
}

export async function checkWebhookUrl(raw: string, policy: UrlPolicy): Promise<UrlVerdict> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'url must be an absolute https URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { ok: false, reason: 'url must use https' };
  const plainHttp = url.protocol === 'http:';
  if (url.username !== '' || url.password !== '') return { ok: false, reason: 'url must not contain credentials' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = net.isIP(host) !== 0 ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    return { ok: false, reason: `the host ${host} does not resolve` };
  }
  for (const ip of addresses) {
    const verdict = addressAllowed(ip, policy, plainHttp);
    if (!verdict.ok) return verdict;
  }
  return { ok: true };
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | { address: string; family: number }[], family?: number) => void;

/**
 * A DNS lookup for http.request that refuses disallowed addresses, so a delivery connects only to
 * an address that passed the policy at that very moment (`plainHttp`: for an http URL).
 */
export function guardedLookup(policy: UrlPolicy, plainHttp: boolean) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback): void => {
    lookup(hostname, { all: true }).then(
      (found) => {
        const bad = found.map((a) => addressAllowed(a.address, policy, plainHttp)).find((v) => !v.ok);
        if (bad !== undefined && !bad.ok) {
          callback(Object.assign(new Error(`refused: ${bad.reason}`), { code: 'EADDRNOTALLOWED' }), '', 0);
          return;
        }
        const first = found[0];
        if (first === undefined) callback(Object.assign(new Error(`${hostname} does not resolve`), { code: 'ENOTFOUND' }), '', 0);
        else if (options.all === true) callback(null, found);
        else callback(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}
