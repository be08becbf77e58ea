import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CreateAccessKeyCommand, CreateUserCommand, DeleteAccessKeyCommand, IAMClient } from "@aws-sdk/client-iam";
import { MAX_FAILURES_PER_CLIENT } from "../../src/dashboard/login.js";
import { startDashboardFixture, TOTAL_REQUESTS, TRAFFIC, type DashboardFixture } from "./fixture.js";

const FORM = { "content-type": "application/x-www-form-urlencoded" };

describe("dashboard routes over HTTP", () => {
  let fixture: DashboardFixture;
  let cookie: string;

  before(async () => {
    fixture = await startDashboardFixture();
    cookie = await fixture.login();
  });
  after(() => fixture?.close());

  test("unauthenticated requests redirect to login", async () => {
    for (const path of [
      "/_portico/dashboard",
      "/_portico/dashboard/api/distributions",
      "/_portico/dashboard/api/series?distributionId=E123&range=hour",
      "/_portico/dashboard/assets/dashboard.js",
      "/_portico/dashboard/assets/uPlot.iife.min.js",
      "/_portico/dashboard/nope",
      "/_portico/dashboard/api/nope",
    ]) {
      const response = await fixture.api(path);
      assert.equal(response.status, 303, path);
      assert.equal(response.headers.location, "/_portico/dashboard/login", path);
    }
  });

  test("unknown address with a session is 404", async () => {
    for (const path of ["/_portico/dashboard/nope", "/_portico/dashboard/api/nope"]) {
      const response = await fixture.api(path, { headers: { cookie } });
      assert.equal(response.status, 404, path);
    }
    const outside = await fixture.api("/_portico/nope");
    assert.equal(outside.status, 404, "paths outside the dashboard are not redirected");
  });

  test("responses carry security headers", async () => {
    const response = await fixture.api("/_portico/dashboard/login");
    assert.equal(response.status, 200);
    const csp = String(response.headers["content-security-policy"]);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(response.headers["x-frame-options"], "DENY");
    assert.equal(response.headers["x-content-type-options"], "nosniff");
  });

  test("login cookie is HttpOnly, SameSite=Strict, expiring", async () => {
    const body = new URLSearchParams({
      accessKeyId: fixture.portico.target.accessKeyId,
      secretAccessKey: fixture.portico.target.secretAccessKey,
    });
    const response = await fixture.api("/_portico/dashboard/login", { method: "POST", headers: FORM, body: body.toString() });
    assert.equal(response.status, 303);
    assert.equal(response.headers.location, "/_portico/dashboard");
    const setCookie = String(response.headers["set-cookie"]?.[0]);
    assert.match(setCookie, /; HttpOnly/);
    assert.match(setCookie, /; SameSite=Strict/);
    assert.match(setCookie, /; Max-Age=43200/);
    assert.match(setCookie, /; Path=\/_portico\/dashboard/);
    assert.ok(!setCookie.includes(fixture.portico.target.secretAccessKey));
  });

  test("wrong secret, unknown key and service key fail", async () => {
    const stored = JSON.parse(
      await import("node:fs/promises").then((fs) => fs.readFile(join(fixture.dataDir, "credentials.json"), "utf8")),
    ) as { service: { accessKeyId: string; secretAccessKey: string } };
    const attempts = [
      { accessKeyId: fixture.portico.target.accessKeyId, secretAccessKey: "wrong-secret" },
      { accessKeyId: "AKIAUNKNOWNKEY000000", secretAccessKey: fixture.portico.target.secretAccessKey },
      // The edges' origin-signing key is not a person's key.
      stored.service,
    ];
    for (const attempt of attempts) {
      const response = await fixture.api("/_portico/dashboard/login", {
        method: "POST",
        headers: FORM,
        body: new URLSearchParams(attempt).toString(),
        localAddress: "127.0.0.3",
      });
      assert.equal(response.status, 401, attempt.accessKeyId);
      assert.equal(response.headers["set-cookie"], undefined);
      assert.match(response.body, /incorrect/);
      assert.ok(!response.body.includes(attempt.secretAccessKey), "the secret is not echoed");
    }
  });

  test("IAM user key signs in until deleted", async () => {
    const iam = new IAMClient({
      endpoint: fixture.portico.target.endpoint,
      region: "us-east-1",
      credentials: {
        accessKeyId: fixture.portico.target.accessKeyId,
        secretAccessKey: fixture.portico.target.secretAccessKey,
      },
    });
    try {
      await iam.send(new CreateUserCommand({ UserName: "dashboard-viewer" }));
      const key = (await iam.send(new CreateAccessKeyCommand({ UserName: "dashboard-viewer" }))).AccessKey!;
      const body = new URLSearchParams({ accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! });
      const login = await fixture.api("/_portico/dashboard/login", { method: "POST", headers: FORM, body: body.toString() });
      assert.equal(login.status, 303);
      const setCookie = String(login.headers["set-cookie"]?.[0]);
      const userCookie = setCookie.slice(0, setCookie.indexOf(";"));
      const session = await fixture.api("/_portico/dashboard/api/session", { headers: { cookie: userCookie } });
      assert.equal(session.status, 200);
      assert.equal((JSON.parse(session.body) as { accessKeyId: string }).accessKeyId, key.AccessKeyId);

      // A deleted key ends the sessions made with it.
      await iam.send(new DeleteAccessKeyCommand({ UserName: "dashboard-viewer", AccessKeyId: key.AccessKeyId! }));
      const after = await fixture.api("/_portico/dashboard/api/session", { headers: { cookie: userCookie } });
      assert.equal(after.status, 303);
    } finally {
      iam.destroy();
    }
  });

  test("cross-site login is rejected", async () => {
    const body = new URLSearchParams({
      accessKeyId: fixture.portico.target.accessKeyId,
      secretAccessKey: fixture.portico.target.secretAccessKey,
    });
    const crossOrigin = await fixture.api("/_portico/dashboard/login", {
      method: "POST",
      headers: { ...FORM, origin: "http://attacker.localhost" },
      body: body.toString(),
    });
    assert.equal(crossOrigin.status, 403);
    const crossSite = await fixture.api("/_portico/dashboard/login", {
      method: "POST",
      headers: { ...FORM, "sec-fetch-site": "cross-site" },
      body: body.toString(),
    });
    assert.equal(crossSite.status, 403);
  });

  test("failed logins are rate-limited per client", async () => {
    const client = "127.0.0.2";
    const wrong = new URLSearchParams({ accessKeyId: fixture.portico.target.accessKeyId, secretAccessKey: "nope" });
    for (let i = 0; i < MAX_FAILURES_PER_CLIENT; i++) {
      const response = await fixture.api("/_portico/dashboard/login", {
        method: "POST",
        headers: FORM,
        body: wrong.toString(),
        localAddress: client,
      });
      assert.equal(response.status, 401, `attempt ${i + 1}`);
    }
    const right = new URLSearchParams({
      accessKeyId: fixture.portico.target.accessKeyId,
      secretAccessKey: fixture.portico.target.secretAccessKey,
    });
    const limited = await fixture.api("/_portico/dashboard/login", {
      method: "POST",
      headers: FORM,
      body: right.toString(),
      localAddress: client,
    });
    assert.equal(limited.status, 429, "even the right secret waits");
    assert.ok(Number(limited.headers["retry-after"]) > 0);
    const otherClient = await fixture.api("/_portico/dashboard/login", { method: "POST", headers: FORM, body: right.toString() });
    assert.equal(otherClient.status, 303, "another address is not limited");
  });

  test("tampered session cookie is rejected", async () => {
    const [name, value] = cookie.split("=") as [string, string];
    const [payload, signature] = value.split(".") as [string, string];
    const session = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
    session.expiresAtMs = Date.now() + 365 * 24 * 3600_000;
    const forged = `${name}=${Buffer.from(JSON.stringify(session)).toString("base64url")}.${signature}`;
    const response = await fixture.api("/_portico/dashboard/api/distributions", { headers: { cookie: forged } });
    assert.equal(response.status, 303);
    const valid = await fixture.api("/_portico/dashboard/api/distributions", { headers: { cookie } });
    assert.equal(valid.status, 200);
  });

  test("distributions route lists status, names, origins, version", async () => {
    const response = await fixture.api("/_portico/dashboard/api/distributions", { headers: { cookie } });
    assert.equal(response.status, 200);
    assert.match(String(response.headers["content-type"]), /^application\/json/);
    const { distributions } = JSON.parse(response.body) as { distributions: Array<Record<string, unknown>> };
    assert.equal(distributions.length, 1);
    const [distribution] = distributions as [Record<string, unknown>];
    assert.equal(distribution.id, fixture.distributionId);
    assert.equal(distribution.status, "Deployed");
    assert.equal(distribution.domainName, fixture.domainName);
    assert.equal(distribution.configVersion, 1);
    assert.deepEqual(distribution.origins, [{ id: "app-origin", domainName: "127.0.0.1", originPath: "", kind: "custom" }]);
  });

  test("edges route shows applied versions", async () => {
    const response = await fixture.api("/_portico/dashboard/api/edges", { headers: { cookie } });
    const { edges, nowMs } = JSON.parse(response.body) as {
      nowMs: number;
      edges: Array<{ edgeId: string; lastSeenAtMs: number; appliedVersions: Record<string, number> }>;
    };
    // `portico up` runs one edge, or one per worker process.
    assert.ok(edges.length >= 1);
    for (const edge of edges) {
      assert.match(edge.edgeId, /^edge-/);
      assert.equal(edge.appliedVersions[fixture.distributionId], 1, edge.edgeId);
      assert.ok(edge.lastSeenAtMs <= nowMs);
    }
  });

  test("invalidations route shows the batch", async () => {
    const response = await fixture.api("/_portico/dashboard/api/invalidations", { headers: { cookie } });
    const { invalidations } = JSON.parse(response.body) as { invalidations: Array<Record<string, unknown>> };
    assert.equal(invalidations.length, 1);
    assert.equal(invalidations[0]!.id, fixture.invalidationId);
    assert.equal(invalidations[0]!.distributionId, fixture.distributionId);
    assert.equal(invalidations[0]!.status, "Completed");
    assert.deepEqual(invalidations[0]!.paths, ["/cached.txt"]);
  });

  test("series route counts the viewer requests", async () => {
    const query = new URLSearchParams({ distributionId: fixture.distributionId, range: "hour" });
    const response = await fixture.api(`/_portico/dashboard/api/series?${query}`, { headers: { cookie } });
    assert.equal(response.status, 200);
    const series = JSON.parse(response.body) as {
      periodSeconds: number;
      timestamps: number[];
      metrics: Record<string, Array<number | null>>;
    };
    assert.equal(series.periodSeconds, 60);
    // Sixty minutes, the last one still in progress.
    assert.equal(series.timestamps.length, 60);
    assert.ok(series.timestamps.at(-1)! * 1000 <= Date.now());
    const sum = (values: Array<number | null>) => values.reduce<number>((total, value) => total + (value ?? 0), 0);
    assert.equal(sum(series.metrics.Requests!), TOTAL_REQUESTS);
    assert.ok(sum(series.metrics.BytesDownloaded!) > TOTAL_REQUESTS * 100);
    // Every 404 is a 4xx error; nothing failed on the server side.
    const errorMinutes = series.metrics["4xxErrorRate"]!.filter((value) => value !== null);
    assert.ok(errorMinutes.length >= 1);
    assert.ok(errorMinutes.some((value) => value! > 0));
    assert.ok(series.metrics["5xxErrorRate"]!.every((value) => value === null || value === 0));
    const hitRates = series.metrics.CacheHitRate!.filter((value) => value !== null);
    assert.ok(hitRates.some((value) => value! > 0), "the repeated cacheable GETs hit");
    assert.ok(fixture.originHits() < TOTAL_REQUESTS, "hits did not reach the origin");
    assert.ok(TRAFFIC.cachedRequests > 1);

    for (const range of ["day", "week"]) {
      const wider = await fixture.api(
        `/_portico/dashboard/api/series?${new URLSearchParams({ distributionId: fixture.distributionId, range })}`,
        { headers: { cookie } },
      );
      const parsed = JSON.parse(wider.body) as { timestamps: number[]; metrics: Record<string, Array<number | null>> };
      assert.equal(sum(parsed.metrics.Requests!), TOTAL_REQUESTS, range);
      assert.equal(parsed.timestamps.length, range === "day" ? 288 : 168, range);
    }
  });

  test("series route rejects bad input", async () => {
    const badRange = await fixture.api(
      `/_portico/dashboard/api/series?distributionId=${fixture.distributionId}&range=year`,
      { headers: { cookie } },
    );
    assert.equal(badRange.status, 400);
    const badId = await fixture.api("/_portico/dashboard/api/series?distributionId=%3Cx%3E&range=hour", { headers: { cookie } });
    assert.equal(badId.status, 400);
    const post = await fixture.api("/_portico/dashboard/api/distributions", { method: "POST", headers: { cookie } });
    assert.equal(post.status, 405);
  });

  test("session key is private and no secret is logged", async () => {
    const key = await stat(join(fixture.dataDir, "dashboard-session.key"));
    assert.equal(key.mode & 0o777, 0o600);
    const logged = JSON.stringify(fixture.portico.logs) + fixture.portico.stderr();
    assert.ok(logged.includes("dashboard login failed"), "failures are logged");
    assert.ok(!logged.includes(fixture.portico.target.secretAccessKey), "the root secret is not logged");
    assert.ok(!logged.includes(cookie.split("=")[1]!), "the session cookie is not logged");
  });

  test("logout clears the cookie", async () => {
    const response = await fixture.api("/_portico/dashboard/logout", { method: "POST", headers: { cookie } });
    assert.equal(response.status, 303);
    assert.equal(response.headers.location, "/_portico/dashboard/login");
    assert.match(String(response.headers["set-cookie"]?.[0]), /^portico_session=; .*Max-Age=0/);
    const get = await fixture.api("/_portico/dashboard/logout", { headers: { cookie } });
    assert.equal(get.status, 405);
  });
});
