import { describe, expect, it } from 'vitest';
import { checkWebhookUrl, classifyAddress } from '../../src/webhooks/url-policy.ts';

describe('webhook address policy', () => {
  it.each([
    ['127.0.0.1', 'loopback'], ['::1', 'loopback'], ['::ffff:127.0.0.1', 'loopback'], ['::ffff:7f00:1', 'loopback'], ['::7f00:1', 'loopback'],
    ['10.0.0.1', 'private'], ['::ffff:a00:1', 'private'], ['169.254.169.254', 'private'], ['::ffff:a9fe:a9fe', 'private'],
    ['64:ff9b::a9fe:a9fe', 'private'], ['192.168.1.1', 'private'], ['172.16.5.4', 'private'], ['100.64.0.1', 'private'],
    ['fd00::1', 'private'], ['fe80::1', 'private'], ['fec0::1', 'private'], ['ff02::1', 'private'], ['::', 'private'], ['0.0.0.0', 'private'],
    ['8.8.8.8', 'public'], ['::ffff:8.8.8.8', 'public'], ['2001:4860:4860::8888', 'public'], ['64:ff9b::808:808', 'public'],
    // IPv4-translated (::ffff:0:a.b.c.d) and NAT64's local-use prefix.
    ['::ffff:0:7f00:1', 'loopback'], ['::ffff:0:a00:1', 'private'], ['64:ff9b:1::808:808', 'private'],
    // 6to4 (2002:aabb:ccdd::/48): a tunnelled private or loopback IPv4 is private, a public one public.
    ['2002:7f00:1::', 'private'], ['2002:7f00:0001::1', 'private'], ['2002:a00:1::1', 'private'], ['2002:a9fe:a9fe::1', 'private'],
    ['2002:c0a8:101::1', 'private'], ['2002:808:808::1', 'public'], ['192.88.99.1', 'private'],
    // Teredo (2001:0::/32): server IPv4 in groups 2-3, client IPv4 inverted in groups 6-7 (80ff:fffe = 127.0.0.1, f5ff:fffe = 10.0.0.1).
    ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'private'], ['2001:0:4136:e378:8000:63bf:f5ff:fffe', 'private'],
    ['2001:0:7f00:1:8000:63bf:f7f7:f7f7', 'private'], ['2001:0000:4136:e378:8000:63bf:f7f7:f7f7', 'public'],
    // ISATAP interface identifiers under a global prefix.
    ['2001:4860::5efe:7f00:1', 'private'], ['2001:4860::200:5efe:a00:1', 'private'], ['2001:4860::5efe:808:808', 'public'],
    // Documentation, benchmarking and ORCHID prefixes are not routable.
    ['2001:db8::1', 'private'], ['3fff::1', 'private'], ['2001:2::1', 'private'], ['2001:10::1', 'private'], ['2001:20::1', 'private'],
  ])('classifies %s as %s, IPv4 hidden in IPv6 forms included', (ip, kind) => {
    expect(classifyAddress(ip)).toBe(kind);
  });

  it('refuses URLs whose address is private or loopback in any spelling unless allowed', async () => {
    const strict = { allowPrivate: false, allowLoopback: false };
    for (const url of ['http://[::ffff:127.0.0.1]:9/', 'http://[::ffff:7f00:1]/', 'http://[::ffff:a9fe:a9fe]/', 'http://[64:ff9b::a00:1]/', 'http://[fec0::1]/', 'http://0.0.0.0/']) {
      expect((await checkWebhookUrl(url, strict)).ok, url).toBe(false);
    }
    expect((await checkWebhookUrl('http://[::ffff:7f00:1]/', { allowPrivate: false, allowLoopback: true })).ok).toBe(true);
    expect((await checkWebhookUrl('https://8.8.8.8/hook', strict)).ok).toBe(true);
  });

  it('refuses the 6to4, Teredo and ISATAP forms of loopback and private addresses, even where loopback is allowed (sandbox)', async () => {
    const sandbox = { allowPrivate: false, allowLoopback: true };
    for (const url of [
      'http://[2002:7f00:0001::]/', 'https://[2002:7f00:1::1]:8443/hook', 'http://[2002:a00:1::]/', 'http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/',
      'http://[2001:0:7f00:1::f7f7:f7f7]/', 'http://[2001:4860::5efe:7f00:1]/', 'http://[::ffff:0:a00:1]/',
    ]) {
      expect((await checkWebhookUrl(url, sandbox)).ok, url).toBe(false);
      expect((await checkWebhookUrl(url, { allowPrivate: false, allowLoopback: false })).ok, url).toBe(false);
    }
    expect((await checkWebhookUrl('https://[2002:808:808::1]/hook', { allowPrivate: false, allowLoopback: false })).ok).toBe(true);
  });
});
