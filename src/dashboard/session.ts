import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { chmod, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileDurably } from "../common/durable.js";

/** Name of the session cookie. */
export const SESSION_COOKIE = "portico_session";
/** How long a session lasts after login: 12 hours. */
export const SESSION_TTL_MS = 12 * 3600 * 1000;
const SESSION_KEY_BYTES = 32;

/** The contents of a signed session cookie. */
export interface Session {
  accessKeyId: string;
  /** Fingerprint of the secret key at login, so a changed secret ends the session. */
  keyFingerprint: string;
  issuedAtMs: number;
  expiresAtMs: number;
}

/**
 * Loads the session signing key from `<dataDir>/dashboard-session.key`,
 * creating it with mode 0600 on first start. A key file readable by others
 * is narrowed to 0600, because anyone holding the key can forge sessions.
 */
export async function loadSessionKey(dataDir: string): Promise<Buffer> {
  const path = join(dataDir, "dashboard-session.key");
  try {
    const text = (await readFile(path, "utf8")).trim();
    const key = Buffer.from(text, "hex");
    if (key.length !== SESSION_KEY_BYTES) {
      throw new Error(`invalid session key in ${path}: expected ${SESSION_KEY_BYTES * 2} hex digits; delete the file to make a new one`);
    }
    if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
    return key;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const key = randomBytes(SESSION_KEY_BYTES);
  await writeFileDurably(path, key.toString("hex") + "\n", 0o600);
  return key;
}

/**
 * Issues and verifies session cookies of the form `payload.signature`, both
 * base64url, where the signature is HMAC-SHA256 of the payload text under
 * the session key. The server keeps no session table, so logout only clears
 * the cookie in the browser; a copied cookie stays valid until it expires.
 */
export class SessionSigner {
  constructor(
    private readonly key: Buffer,
    private readonly now: () => number = Date.now,
  ) {}

  /** Returns a short, keyed fingerprint of a secret key; the secret itself never enters the cookie. */
  fingerprint(secretAccessKey: string): string {
    return createHmac("sha256", this.key).update("secret-key:").update(secretAccessKey).digest("base64url").slice(0, 22);
  }

  issue(accessKeyId: string, secretAccessKey: string): { value: string; session: Session } {
    const issuedAtMs = this.now();
    const session: Session = {
      accessKeyId,
      keyFingerprint: this.fingerprint(secretAccessKey),
      issuedAtMs,
      expiresAtMs: issuedAtMs + SESSION_TTL_MS,
    };
    const payload = Buffer.from(JSON.stringify(session)).toString("base64url");
    return { value: `${payload}.${this.sign(payload)}`, session };
  }

  /** Returns the session when the signature matches and it has not expired, else undefined. */
  verify(value: string): Session | undefined {
    const dot = value.indexOf(".");
    if (dot <= 0) return undefined;
    const payload = value.slice(0, dot);
    const given = Buffer.from(value.slice(dot + 1), "base64url");
    const expected = Buffer.from(this.sign(payload), "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;

    let session: unknown;
    try {
      session = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    } catch {
      return undefined;
    }
    if (!isSession(session)) return undefined;
    if (session.expiresAtMs <= this.now()) return undefined;
    return session;
  }

  private sign(payload: string): string {
    return createHmac("sha256", this.key).update(payload).digest("base64url");
  }
}

function isSession(value: unknown): value is Session {
  if (typeof value !== "object" || value === null) return false;
  const session = value as Record<string, unknown>;
  return (
    typeof session.accessKeyId === "string" &&
    typeof session.keyFingerprint === "string" &&
    typeof session.issuedAtMs === "number" &&
    typeof session.expiresAtMs === "number"
  );
}
