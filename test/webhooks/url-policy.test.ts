import { describe, expect, it } from 'vitest';
import { checkWebhookUrl, classifyAddress } from '../../src/webhooks/url-policy.ts';

describe('webhook address policy', () => {
  it.each([
    ['127.0.0.1', 'loopback'], ['::1', 'loopback'], ['::ffff:127.0.0.1', 'loopback'], ['::ffff:7f00:1', 'loopback'], ['::7f00:1', 'loopback'],
    ['10.0.0.1', 'private'], ['::ffff:a00:1', 'private'], ['169.254.169.254', 'private'], ['::ffff:a9fe:a9fe', 'private'],
    ['64:ff9b::a9fe:a9fe', 'private'], ['192.168.1.1', 'private'], ['172.16.5.4', 'private'], ['100.64.0.1', 'private'],
    ['fd00::1', 'private'], ['fe80::1', 'private'], ['fec0::1', 'private'], ['ff02::1', 'private'], ['::', 'private'], ['0.0.0.0', 'private'],
    ['8.8.8.8', 'public'], ['::ffff:8.8.8.8', 'public'], ['2001:4860:4860::8888', 'public'], ['64:ff9b::808:808', 'public'],
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
});
