/**
 * Which webhook URLs Mooring will call: http(s) only, and never an address on the operator's own
 * network (loopback, private, link-local, …) unless the operator allows it — otherwise webhooks
 * could be used to probe that network. Checked at registration and again before every delivery,
 * since a name can resolve differently later.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';

export interface UrlPolicy {
  allowPrivate: boolean;
  allowLoopback: boolean;
}

export type UrlVerdict = { ok: true } | { ok: false; reason: string };

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || ip.startsWith('::ffff:127.');
}

function isPrivate(ip: string): boolean {
  const v4 = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (net.isIPv4(v4)) {
    const [a = 0, b = 0] = v4.split('.').map(Number);
    return a === 10 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127) || a >= 224;
  }
  const lower = ip.toLowerCase();
  return lower === '::' || lower.startsWith('fc') || lower.startsWith('fd') || lower.startsWith('fe80');
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
    if (isLoopback(ip)) {
      if (!policy.allowLoopback && !policy.allowPrivate) return { ok: false, reason: `the host resolves to a loopback address (${ip}); set MOORING_WEBHOOK_ALLOW_PRIVATE=true to allow it` };
    } else if (isPrivate(ip) && !policy.allowPrivate) {
      return { ok: false, reason: `the host resolves to a private address (${ip}); set MOORING_WEBHOOK_ALLOW_PRIVATE=true to allow it` };
    }
  }
  return { ok: true };
}
