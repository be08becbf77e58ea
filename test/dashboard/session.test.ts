import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { CredentialStore, SigningKey } from "../../src/api/auth/principal.js";
import { escapeHtml, isSameOrigin } from "../../src/dashboard/http.js";
import {
  checkLogin,
  FAILURE_WINDOW_MS,
  LoginRateLimiter,
  MAX_FAILURES_PER_CLIENT,
  MAX_FAILURES_TOTAL,
} from "../../src/dashboard/login.js";
import { renderLoginPage } from "../../src/dashboard/pages.js";
import { loadSessionKey, SESSION_TTL_MS, SessionSigner } from "../../src/dashboard/session.js";
import type { IncomingMessage } from "node:http";

const KEY = Buffer.alloc(32, 7);

test("session round-trips and expires", () => {
  let nowMs = 1_000_000;
  const signer = new SessionSigner(KEY, () => nowMs);
  const { value } = signer.issue("AKIAEXAMPLE", "secret");
  const session = signer.verify(value);
  assert.equal(session?.accessKeyId, "AKIAEXAMPLE");
  assert.equal(session?.expiresAtMs, 1_000_000 + SESSION_TTL_MS);
  assert.equal(session?.keyFingerprint, signer.fingerprint("secret"));
  assert.notEqual(signer.fingerprint("secret"), signer.fingerprint("other"));
  assert.ok(!value.includes("secret"));
  nowMs += SESSION_TTL_MS - 1;
  assert.ok(signer.verify(value));
  nowMs += 1;
  assert.equal(signer.verify(value), undefined, "expired at expiresAtMs");
});

test("session rejects forgery and garbage", () => {
  const signer = new SessionSigner(KEY);
  const other = new SessionSigner(Buffer.alloc(32, 8));
  const { value } = signer.issue("AKIAEXAMPLE", "secret");
  assert.equal(other.verify(value), undefined, "another key");
  const [payload, signature] = value.split(".") as [string, string];
  const changed = Buffer.from(
    Buffer.from(payload, "base64url").toString("utf8").replace("AKIAEXAMPLE", "AKIAOTHERKEY"),
  ).toString("base64url");
  assert.equal(signer.verify(`${changed}.${signature}`), undefined, "changed payload");
  for (const bad of ["", ".", "abc", `${payload}.`, `.${signature}`, `${payload}.${signature}x`, "a.b.c"]) {
    assert.equal(signer.verify(bad), undefined, JSON.stringify(bad));
  }
  // A correctly signed payload of the wrong shape.
  const oddPayload = Buffer.from(JSON.stringify({ accessKeyId: 5 })).toString("base64url");
  const oddSignature = createHmac("sha256", KEY).update(oddPayload).digest("base64url");
  assert.equal(signer.verify(`${oddPayload}.${oddSignature}`), undefined);
});

test("session key file is created 0600 and reused", async () => {
  const dir = await mkdtemp(join(tmpdir(), "portico-session-"));
  try {
    const first = await loadSessionKey(dir);
    const path = join(dir, "dashboard-session.key");
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal(first.length, 32);
    assert.deepEqual(await loadSessionKey(dir), first);
    await chmod(path, 0o644);
    await loadSessionKey(dir);
    assert.equal((await stat(path)).mode & 0o777, 0o600, "narrowed again");
    await writeFile(path, "short\n");
    await assert.rejects(loadSessionKey(dir), /invalid session key/);
    assert.equal(await readFile(path, "utf8"), "short\n", "a bad key is not replaced silently");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function storeWith(keys: SigningKey[]): CredentialStore {
  return { lookup: (id) => keys.find((key) => key.accessKeyId === id) };
}

test("checkLogin accepts people only", () => {
  // Built apart from the key so that fields added to the principal type later do not break this test.
  const userPrincipal = {
    type: "user" as const,
    accessKeyId: "AKIAUSER",
    accountId: "1",
    userName: "alice",
    userId: "AIDAALICE",
    arn: "arn:aws:iam::1:user/alice",
  };
  const store = storeWith([
    { accessKeyId: "AKIAROOT", secretAccessKey: "root-secret", principal: { type: "root", accessKeyId: "AKIAROOT", accountId: "1", arn: "a" } },
    { accessKeyId: "AKIAUSER", secretAccessKey: "user-secret", principal: userPrincipal },
    {
      accessKeyId: "ASIASERVICE",
      secretAccessKey: "service-secret",
      principal: { type: "service", service: "cloudfront.amazonaws.com", accessKeyId: "ASIASERVICE", sourceArn: undefined },
    },
  ]);
  assert.equal(checkLogin(store, "AKIAROOT", "root-secret")?.accessKeyId, "AKIAROOT");
  assert.equal(checkLogin(store, "AKIAUSER", "user-secret")?.accessKeyId, "AKIAUSER");
  assert.equal(checkLogin(store, "AKIAROOT", "root-secre"), undefined);
  assert.equal(checkLogin(store, "AKIAROOT", "root-secret "), undefined);
  assert.equal(checkLogin(store, "AKIAROOT", ""), undefined);
  assert.equal(checkLogin(store, "AKIAUSER", "root-secret"), undefined);
  assert.equal(checkLogin(store, "ASIASERVICE", "service-secret"), undefined);
  assert.equal(checkLogin(store, "", ""), undefined);
});

test("rate limiter per client and in total", () => {
  let nowMs = 0;
  const limiter = new LoginRateLimiter(() => nowMs);
  for (let i = 0; i < MAX_FAILURES_PER_CLIENT; i++) {
    assert.equal(limiter.retryAfterSeconds("10.0.0.1"), 0, `attempt ${i + 1}`);
    limiter.recordFailure("10.0.0.1");
  }
  assert.equal(limiter.retryAfterSeconds("10.0.0.1"), FAILURE_WINDOW_MS / 1000);
  assert.equal(limiter.retryAfterSeconds("10.0.0.2"), 0, "other clients go on");
  nowMs += FAILURE_WINDOW_MS / 2;
  assert.equal(limiter.retryAfterSeconds("10.0.0.1"), FAILURE_WINDOW_MS / 2000);
  nowMs += FAILURE_WINDOW_MS / 2;
  assert.equal(limiter.retryAfterSeconds("10.0.0.1"), 0, "window over");

  // Many addresses, a few failures each, still reach the total limit.
  for (let i = 0; i < MAX_FAILURES_TOTAL; i++) limiter.recordFailure(`10.1.${Math.floor(i / 2)}.${i % 2}`);
  assert.ok(limiter.retryAfterSeconds("10.9.9.9") > 0, "total limit applies to a new address");
  nowMs += FAILURE_WINDOW_MS;
  assert.equal(limiter.retryAfterSeconds("10.9.9.9"), 0);
});

test("rate limiter success clears client failures", () => {
  const limiter = new LoginRateLimiter(() => 0);
  for (let i = 0; i < MAX_FAILURES_PER_CLIENT - 1; i++) limiter.recordFailure("10.0.0.1");
  limiter.recordSuccess("10.0.0.1");
  limiter.recordFailure("10.0.0.1");
  assert.equal(limiter.retryAfterSeconds("10.0.0.1"), 0);
});

function requestWith(headers: Record<string, string>): IncomingMessage {
  return { headers: { host: "127.0.0.1:4580", ...headers } } as unknown as IncomingMessage;
}

test("same-origin check", () => {
  const cases: Array<[Record<string, string>, boolean]> = [
    [{}, true],
    [{ "sec-fetch-site": "same-origin" }, true],
    [{ "sec-fetch-site": "same-origin", origin: "null" }, true],
    [{ "sec-fetch-site": "none" }, true],
    [{ "sec-fetch-site": "same-site" }, false],
    [{ "sec-fetch-site": "cross-site", origin: "http://127.0.0.1:4580" }, false],
    [{ origin: "http://127.0.0.1:4580" }, true],
    [{ origin: "http://127.0.0.1:4581" }, false],
    [{ origin: "http://evil.localhost" }, false],
    [{ origin: "null" }, false],
    [{ origin: "not a url" }, false],
  ];
  for (const [headers, expected] of cases) {
    assert.equal(isSameOrigin(requestWith(headers)), expected, JSON.stringify(headers));
  }
});

test("login page escapes the echoed key id", () => {
  const hostile = `"><script>alert(1)</script>`;
  const page = renderLoginPage({ accessKeyId: hostile, error: "<b>x</b>" });
  assert.ok(!page.includes("<script>alert"));
  assert.ok(page.includes(escapeHtml(hostile)));
  assert.ok(page.includes("&lt;b&gt;x&lt;/b&gt;"));
  assert.equal(escapeHtml(`&<>"'`), "&amp;&lt;&gt;&quot;&#39;");
});
