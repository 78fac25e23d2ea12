/**
 * Which webhook URLs Mooring will call: http(s) only, and only globally routable addresses unless
 * the operator allows private ones (sandbox mode allows loopback) — otherwise webhooks could probe
 * the operator's network. IPv4 addresses hidden in IPv6 forms (mapped, compatible, NAT64) are
 * unwrapped first. The check runs at registration, and again inside every delivery's DNS lookup,
 * so the connection goes to the address that was checked (no rebinding between check and use).
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
  const [a = 0, b = 0] = ip.split('.').map(Number);
  if (a === 127) return 'loopback';
  const isPrivate =
    a === 0 || a === 10 || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) || (a === 192 && b === 0) || (a === 198 && (b === 18 || b === 19)) || a >= 224;
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

export function classifyAddress(ip: string): AddressClass {
  if (net.isIPv4(ip)) return v4Class(ip);
  const g = v6Groups(ip);
  const embeddedV4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zeros = (n: number): boolean => g.slice(0, n).every((x) => x === 0);
  if (zeros(7) && g[7] === 1) return 'loopback';
  if (zeros(5) && g[5] === 0xffff) return v4Class(embeddedV4(g[6] ?? 0, g[7] ?? 0)); // ::ffff:a.b.c.d
  if (zeros(6)) return zeros(8) ? 'private' : v4Class(embeddedV4(g[6] ?? 0, g[7] ?? 0)); // ::a.b.c.d
  if (g[0] === 0x64 && g[1] === 0xff9b) return v4Class(embeddedV4(g[6] ?? 0, g[7] ?? 0)); // NAT64
  // Only global unicast (2000::/3) is public; ULA, link-local, site-local, multicast are not.
  return ((g[0] ?? 0) & 0xe000) === 0x2000 ? 'public' : 'private';
}

export function addressAllowed(ip: string, policy: UrlPolicy): UrlVerdict {
  const kind = classifyAddress(ip);
  if (kind === 'public' || policy.allowPrivate) return { ok: true };
  if (kind === 'loopback' && policy.allowLoopback) return { ok: true };
  return { ok: false, reason: `the host resolves to a ${kind} address (${ip}); set MOORING_WEBHOOK_ALLOW_PRIVATE=true to allow it` };
}

export async function checkWebhookUrl(raw: string, policy: UrlPolicy): Promise<UrlVerdict> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'url must be an absolute http(s) URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { ok: false, reason: 'url must use http or https' };
  if (url.username !== '' || url.password !== '') return { ok: false, reason: 'url must not contain credentials' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = net.isIP(host) !== 0 ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    return { ok: false, reason: `the host ${host} does not resolve` };
  }
  for (const ip of addresses) {
    const verdict = addressAllowed(ip, policy);
    if (!verdict.ok) return verdict;
  }
  return { ok: true };
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | { address: string; family: number }[], family?: number) => void;

/**
 * A DNS lookup for http.request that refuses disallowed addresses, so a delivery connects only to
 * an address that passed the policy at that very moment.
 */
export function guardedLookup(policy: UrlPolicy) {
  return (hostname: string, options: { all?: boolean }, callback: LookupCallback): void => {
    lookup(hostname, { all: true }).then(
      (found) => {
        const bad = found.map((a) => addressAllowed(a.address, policy)).find((v) => !v.ok);
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
