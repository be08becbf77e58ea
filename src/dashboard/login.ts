import { createHash, timingSafeEqual } from "node:crypto";
import type { CredentialStore, SigningKey } from "../api/auth/principal.js";

/** Failed logins allowed from one client address per window. */
export const MAX_FAILURES_PER_CLIENT = 5;
/** Failed logins allowed from all clients together per window, against guessing from many addresses. */
export const MAX_FAILURES_TOTAL = 50;
export const FAILURE_WINDOW_MS = 60_000;
/** Bound on the number of client addresses tracked at once. */
const MAX_TRACKED_CLIENTS = 10_000;

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Compares two secrets in time that depends on neither's content nor length. */
export function secretsEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * Returns the signing key when `accessKeyId` belongs to a person (the root
 * user or an IAM user) and `secretAccessKey` matches it. The CloudFront
 * service key that edges sign origin requests with cannot log in.
 */
export function checkLogin(
  credentials: CredentialStore,
  accessKeyId: string,
  secretAccessKey: string,
): SigningKey | undefined {
  const key = credentials.lookup(accessKeyId);
  const canLogIn = key !== undefined && (key.principal.type === "root" || key.principal.type === "user");
  // Compare even when the key id is unknown, so the response time does not
  // tell which access key ids exist.
  const matches = secretsEqual(secretAccessKey, canLogIn ? key.secretAccessKey : "\u0000unknown key");
  return canLogIn && matches ? key : undefined;
}

/**
 * Counts failed logins in a fixed window per client address and for all
 * clients together. While a limit is reached, every login attempt is
 * rejected without checking the credentials.
 * NOTE: the total limit lets anyone who can reach the API port block all
 * dashboard logins for a minute at a time; SigV4 API access is not affected.
 */
export class LoginRateLimiter {
  private readonly failuresByClient = new Map<string, { windowStartMs: number; count: number }>();
  private total = { windowStartMs: 0, count: 0 };

  constructor(private readonly now: () => number = Date.now) {}

  /** Returns the seconds to wait when `clientIp` may not try now, else 0. */
  retryAfterSeconds(clientIp: string): number {
    const nowMs = this.now();
    const windows = [this.failuresByClient.get(clientIp), this.total];
    const limits = [MAX_FAILURES_PER_CLIENT, MAX_FAILURES_TOTAL];
    let waitMs = 0;
    windows.forEach((window, index) => {
      if (window === undefined || nowMs - window.windowStartMs >= FAILURE_WINDOW_MS) return;
      if (window.count >= limits[index]!) waitMs = Math.max(waitMs, window.windowStartMs + FAILURE_WINDOW_MS - nowMs);
    });
    return Math.ceil(waitMs / 1000);
  }

  recordFailure(clientIp: string): void {
    const nowMs = this.now();
    if (nowMs - this.total.windowStartMs >= FAILURE_WINDOW_MS) this.total = { windowStartMs: nowMs, count: 0 };
    this.total.count++;

    let window = this.failuresByClient.get(clientIp);
    if (window === undefined || nowMs - window.windowStartMs >= FAILURE_WINDOW_MS) {
      if (this.failuresByClient.size >= MAX_TRACKED_CLIENTS) this.dropExpired(nowMs);
      window = { windowStartMs: nowMs, count: 0 };
      this.failuresByClient.set(clientIp, window);
    }
    window.count++;
  }

  /** Forgets a client's failures after it logs in. */
  recordSuccess(clientIp: string): void {
    this.failuresByClient.delete(clientIp);
  }

  private dropExpired(nowMs: number): void {
    for (const [clientIp, window] of this.failuresByClient) {
      if (nowMs - window.windowStartMs >= FAILURE_WINDOW_MS) this.failuresByClient.delete(clientIp);
    }
    // Still full: the total limit caps failures anyway, so the oldest entry can go.
    if (this.failuresByClient.size >= MAX_TRACKED_CLIENTS) {
      const oldest = this.failuresByClient.keys().next();
      if (!oldest.done) this.failuresByClient.delete(oldest.value);
    }
  }
}
