/**
 * The sandbox's own PKI (SPEC section 10, sandbox): a CA, the certificate of the banks' mTLS
 * listener, Mooring's transport (client) certificate, Mooring's PS256 signing key at the banks and
 * the banks' own signing key. Generated once with Debian's `openssl` into `<dataDir>/sandbox-pki/`
 * and read back on every later start, so every process sharing the data directory agrees.
 * Generation is atomic: everything is written into a temporary directory next to the final one,
 * then renamed; a process that loses the rename race reads the winner's files.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { JWK } from 'jose';

export interface SandboxPki {
  /** PEM, the sandbox CA (trust root of both listeners' certificates). */
  caCert: string;
  /** The banks' mTLS listener (SAN: localhost, 127.0.0.1, ::1 and the given hostnames). */
  serverCert: string;
  serverKey: string;
  /** Mooring's transport certificate, issued by the CA (CN=mooring-sandbox-client, O=Mooring). */
  clientCert: string;
  clientKey: string;
  /** The client certificate's subject as tls_client_auth_subject_dn compares it (RFC 4514 order). */
  clientSubjectDn: string;
  /** PEM RSA 2048 private key: Mooring's PS256 signing key at the sandbox banks. */
  signingKey: string;
  /** Its kid (the RFC 7638 JWK thumbprint of its public key). */
  signingKeyId: string;
  /** PEM RSA 2048: the banks' own ID-token and JARM signing key (PS256). */
  bankSigningKey: string;
}

const PKI_DIR = 'sandbox-pki';
const CERT_DAYS = '3650';
const CLIENT_SUBJECT = '/O=Mooring/CN=mooring-sandbox-client';
const DEFAULT_HOSTS = ['localhost', '127.0.0.1', '::1'];
type PkiFile = 'ca.crt' | 'server.crt' | 'server.key' | 'client.crt' | 'client.key' | 'signing.key' | 'bank-signing.key';

const openssl = (args: string[], cwd: string): void => {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
};

const isIp = (host: string): boolean => /^[\d.]+$/.test(host) || host.includes(':');

/** The subject of a certificate in RFC 4514 form (most specific first), e.g. `CN=mooring-sandbox-client,O=Mooring`. */
export function subjectDn(cert: X509Certificate): string {
  return cert.subject.split('\n').filter((l) => l !== '').reverse().join(',');
}

function newKey(dir: string, name: string): void {
  openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', name], dir);
}

/** Issues `<name>.crt` for `<name>.key` from the CA in `dir`. */
function issue(dir: string, name: string, subject: string, extensions: string): void {
  fs.writeFileSync(path.join(dir, `${name}.ext`), extensions);
  openssl(['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`], dir);
  openssl([
    'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', `0x${randomBytes(16).toString('hex')}`,
    '-days', CERT_DAYS, '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`,
  ], dir);
  fs.rmSync(path.join(dir, `${name}.csr`));
  fs.rmSync(path.join(dir, `${name}.ext`));
}

function issueServerCert(dir: string, hostnames: string[]): void {
  const hosts = [...new Set([...DEFAULT_HOSTS, ...hostnames])];
  const san = hosts.map((h) => (isIp(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  issue(dir, 'server', '/O=Mooring sandbox/CN=Mooring sandbox banks', [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth',
    `subjectAltName=${san}`, '',
  ].join('\n'));
}

function generate(dir: string, hostnames: string[]): void {
  for (const k of ['ca', 'server', 'client', 'signing', 'bank-signing']) newKey(dir, `${k}.key`);
  openssl(['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/O=Mooring sandbox/CN=Mooring sandbox CA', '-days', CERT_DAYS, '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.crt'], dir);
  issueServerCert(dir, hostnames);
  issue(dir, 'client', CLIENT_SUBJECT, [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth', '',
  ].join('\n'));
}

const covers = (cert: X509Certificate, host: string): boolean =>
  isIp(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host) !== undefined;

/** Loads the sandbox PKI from `<dataDir>/sandbox-pki/`, generating it on first use. */
export function loadSandboxPki(dataDir: string, hostnames: string[]): SandboxPki {
  const dir = path.join(dataDir, PKI_DIR);
  if (!fs.existsSync(path.join(dir, 'ca.crt'))) {
    fs.mkdirSync(dataDir, { recursive: true });
    const tmp = fs.mkdtempSync(path.join(dataDir, `${PKI_DIR}.tmp-`));
    try {
      generate(tmp, hostnames);
      fs.renameSync(tmp, dir);
    } catch (err) {
      fs.rmSync(tmp, { recursive: true, force: true });
      // Another process renamed its directory first: use the winner's.
      if (!fs.existsSync(path.join(dir, 'ca.crt'))) throw err;
    }
  }
  const read = (f: PkiFile): string => fs.readFileSync(path.join(dir, f), 'utf8');
  let serverCert = read('server.crt');
  const uncovered = hostnames.filter((h) => !covers(new X509Certificate(serverCert), h));
  if (uncovered.length > 0) {
    // PUBLIC_URL's host changed: re-issue the listener's certificate under the same CA, atomically.
    const tmp = fs.mkdtempSync(path.join(dir, 'reissue-'));
    try {
      for (const f of ['ca.crt', 'ca.key', 'server.key']) fs.copyFileSync(path.join(dir, f), path.join(tmp, f));
      issueServerCert(tmp, hostnames);
      fs.renameSync(path.join(tmp, 'server.crt'), path.join(dir, 'server.crt'));
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    serverCert = read('server.crt');
  }
  const signingKey = read('signing.key');
  const clientCert = read('client.crt');
  const signingKeyId = keyThumbprint(signingKey);
  // The kid beside its key, for a providers file that points a "real" provider at a sandbox bank (README).
  const kidFile = path.join(dir, 'signing.kid');
  if (!fs.existsSync(kidFile)) {
    fs.writeFileSync(`${kidFile}.${process.pid}`, signingKeyId);
    fs.renameSync(`${kidFile}.${process.pid}`, kidFile);
  }
  return {
    caCert: read('ca.crt'),
    serverCert,
    serverKey: read('server.key'),
    clientCert,
    clientKey: read('client.key'),
    clientSubjectDn: subjectDn(new X509Certificate(clientCert)),
    signingKey,
    signingKeyId,
    bankSigningKey: read('bank-signing.key'),
  };
}

/** The public JWK of a PEM private key. */
export function publicJwk(privateKeyPem: string): JWK {
  return createPublicKey(createPrivateKey(privateKeyPem)).export({ format: 'jwk' }) as JWK;
}

/**
 * The RFC 7638 thumbprint of the key's public part, the kid jose's calculateJwkThumbprint gives
 * (computed here because that helper is asynchronous and the PKI is loaded synchronously).
 */
function keyThumbprint(privateKeyPem: string): string {
  const jwk = publicJwk(privateKeyPem);
  // The required members of an RSA key, in lexicographic order (RFC 7638 section 3.2).
  const canonical = JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  return createHash('sha256').update(canonical).digest('base64url');
}
