// @peculiar/x509 resolves its algorithm providers through tsyringe, which
// needs the Reflect metadata polyfill loaded before it.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import type { Logger } from "../common/logger.js";
import { writeFileDurably } from "../common/durable.js";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;
const CA_VALIDITY_YEARS = 10;
/** Leaf validity: 397 days, the longest that browsers accept for a server certificate. */
const LEAF_VALIDITY_DAYS = 397;
/** A leaf that expires within this many days is issued again on start. */
const LEAF_RENEW_BEFORE_DAYS = 30;
const DAY_MS = 24 * 3600 * 1000;
/** Extended key usage id-kp-serverAuth (RFC 5280 section 4.2.1.12). */
const SERVER_AUTH_OID = "1.3.6.1.5.5.7.3.1";

export interface EdgeTlsMaterial {
  /** PEM private key and certificate chain (leaf then CA) for the HTTPS server. */
  key: string;
  cert: string;
  caCertificatePath: string;
}

interface KeyAndCertificate {
  keyPem: string;
  certificate: x509.X509Certificate;
  privateKey: CryptoKey;
}

function toPem(der: ArrayBuffer, label: string): string {
  const base64 = Buffer.from(der).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

function fromPem(pem: string): ArrayBuffer {
  const base64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const bytes = Buffer.from(base64, "base64");
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function serialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0]! &= 0x7f; // A positive INTEGER (RFC 5280 section 4.1.2.2).
  return Buffer.from(bytes).toString("hex");
}

async function readPair(keyPath: string, certPath: string): Promise<KeyAndCertificate | undefined> {
  let keyPem: string;
  let certPem: string;
  try {
    [keyPem, certPem] = await Promise.all([readFile(keyPath, "utf8"), readFile(certPath, "utf8")]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const privateKey = await webcrypto.subtle.importKey("pkcs8", fromPem(keyPem), KEY_ALGORITHM, true, ["sign"]);
  return { keyPem, certificate: new x509.X509Certificate(certPem), privateKey };
}

async function writePair(keyPath: string, certPath: string, pair: KeyAndCertificate): Promise<void> {
  // The key first: a certificate on disk always has its key beside it.
  await writeFileDurably(keyPath, pair.keyPem, 0o600);
  await writeFileDurably(certPath, pair.certificate.toString("pem") + "\n", 0o644);
}

async function createCertificateAuthority(zone: string): Promise<KeyAndCertificate> {
  const keys = (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
  const notBefore = new Date(Date.now() - DAY_MS);
  const notAfter = new Date(notBefore.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CA_VALIDITY_YEARS);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=Portico local CA for ${zone}, O=Portico`,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = toPem(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY");
  return { keyPem, certificate, privateKey: keys.privateKey };
}

async function issueServerCertificate(ca: KeyAndCertificate, zone: string): Promise<KeyAndCertificate> {
  const keys = (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
  const notBefore = new Date(Date.now() - DAY_MS);
  const notAfter = new Date(notBefore.getTime() + LEAF_VALIDITY_DAYS * DAY_MS);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=*.${zone}`,
    issuer: ca.certificate.subject,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([SERVER_AUTH_OID]),
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: `*.${zone}` },
        { type: "dns", value: zone },
      ]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate),
    ],
  });
  const keyPem = toPem(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY");
  return { keyPem, certificate, privateKey: keys.privateKey };
}

/** Returns whether a stored server certificate still fits: issued by `ca`, for `zone`, not near expiry. */
async function serverCertificateFits(leaf: KeyAndCertificate, ca: KeyAndCertificate, zone: string): Promise<boolean> {
  if (leaf.certificate.notAfter.getTime() - Date.now() < LEAF_RENEW_BEFORE_DAYS * DAY_MS) return false;
  const names = leaf.certificate.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? [];
  const dnsNames = new Set(names.filter((name) => name.type === "dns").map((name) => name.value));
  if (!dnsNames.has(zone) || !dnsNames.has(`*.${zone}`)) return false;
  return leaf.certificate.verify({ publicKey: ca.certificate.publicKey, signatureOnly: true });
}

/**
 * Loads the edge's TLS material from `<dataDir>/tls/`, creating what is
 * missing: a local CA valid for 10 years, and a certificate for `*.<zone>`
 * and `<zone>` that it signs. Keys are written with mode 0600.
 */
export async function loadOrCreateTls(dataDir: string, zone: string, log: Logger): Promise<EdgeTlsMaterial> {
  const folder = join(dataDir, "tls");
  const caKeyPath = join(folder, "ca.key");
  const caCertificatePath = join(folder, "ca.crt");
  const serverKeyPath = join(folder, "server.key");
  const serverCertPath = join(folder, "server.crt");
  const normalizedZone = zone.toLowerCase().replace(/\.$/, "");

  let ca = await readPair(caKeyPath, caCertificatePath);
  if (ca === undefined || ca.certificate.notAfter.getTime() <= Date.now()) {
    ca = await createCertificateAuthority(normalizedZone);
    await writePair(caKeyPath, caCertificatePath, ca);
    log.info({ caCertificatePath }, "created a local certificate authority for the edge");
  }

  let server = await readPair(serverKeyPath, serverCertPath);
  if (server === undefined || !(await serverCertificateFits(server, ca, normalizedZone))) {
    server = await issueServerCertificate(ca, normalizedZone);
    await writePair(serverKeyPath, serverCertPath, server);
    log.info({ zone: normalizedZone, notAfter: server.certificate.notAfter.toISOString() }, "issued the edge's server certificate");
  }

  return {
    key: server.keyPem,
    cert: server.certificate.toString("pem") + "\n" + ca.certificate.toString("pem") + "\n",
    caCertificatePath,
  };
}

/** An operator-supplied certificate for one alternate domain name (or `*.` wildcard). */
export interface AliasCertificate {
  /** Lower-case host name the files are named after, such as `cdn.example.com` or `*.example.com`. */
  name: string;
  key: string;
  cert: string;
}

/**
 * Reads operator-supplied certificates from `<dataDir>/tls/aliases/`: one
 * `<name>.crt` (PEM chain, leaf first) and `<name>.key` (PEM private key)
 * per alternate domain name. A `.crt` without its `.key` is skipped with a
 * warning. The folder is created when missing, so operators find where pairs go.
 */
export async function loadAliasCertificates(dataDir: string, log: Logger): Promise<AliasCertificate[]> {
  const folder = join(dataDir, "tls", "aliases");
  await mkdir(folder, { recursive: true });
  const names = await readdir(folder);
  const certificates: AliasCertificate[] = [];
  for (const file of names) {
    if (!file.endsWith(".crt")) continue;
    const name = file.slice(0, -4).toLowerCase();
    try {
      const [cert, key] = await Promise.all([
        readFile(join(folder, file), "utf8"),
        readFile(join(folder, `${file.slice(0, -4)}.key`), "utf8"),
      ]);
      certificates.push({ name, key, cert });
    } catch (error) {
      log.warn({ err: error, certificate: file }, "skipped an alias certificate without a readable key");
    }
  }
  return certificates;
}
