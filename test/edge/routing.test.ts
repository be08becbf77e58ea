import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { test } from "node:test";
import { customSnapshot, request, startOrigin, startTestEdge, ZONE } from "./helpers.js";

async function setup(t: import("node:test").TestContext, options: Partial<Parameters<typeof customSnapshot>[0]> = {}) {
  const origin = await startOrigin((req, res, body) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "text/plain", "set-cookie": "s=1" });
    res.end(`${req.method} ${req.url} ${body.toString()}`);
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge();
  t.after(() => fixture.close());
  const snapshot = customSnapshot({ originPort: origin.port, ...options });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  return { origin, fixture, snapshot };
}

test("unknown host gets 403", async (t) => {
  const { fixture, origin } = await setup(t);
  const response = await request(fixture.edge.httpPort, `dunknown000000.${ZONE}`, "/");
  assert.equal(response.status, 403);
  assert.equal(response.headers["x-cache"], "Error from portico");
  assert.match(response.body.toString(), /could not be satisfied/);
  assert.equal(origin.hits(), 0);
});

test("host matches aliases without case or port", async (t) => {
  const { fixture, snapshot, origin } = await setup(t, { aliases: ["cdn.example.test"] });
  const byAlias = await request(fixture.edge.httpPort, "CDN.Example.Test:8080", "/x");
  assert.equal(byAlias.status, 200);
  const byDomain = await request(fixture.edge.httpPort, snapshot.domainName.toUpperCase(), "/x");
  assert.equal(byDomain.headers["x-cache"], "Hit from portico");
  assert.equal(origin.hits(), 1);
  // The origin receives its own name as Host, not the viewer's.
  assert.equal(origin.requests[0]!.headers.host, `127.0.0.1:${origin.port}`);
  assert.equal(origin.requests[0]!.headers["user-agent"], "Amazon CloudFront");
  assert.match(String(origin.requests[0]!.headers["x-amz-cf-id"]), /^[0-9A-F]{32}$/);
});

test("disabled distribution gets 403", async (t) => {
  const { fixture, snapshot, origin } = await setup(t, { enabled: false });
  const response = await request(fixture.edge.httpPort, snapshot.domainName, "/x");
  assert.equal(response.status, 403);
  assert.equal(origin.hits(), 0);
});

test("update replaces routes and delete removes them", async (t) => {
  const { fixture, snapshot, origin } = await setup(t);
  assert.equal((await request(fixture.edge.httpPort, snapshot.domainName, "/x")).status, 200);
  const updated = customSnapshot({ originPort: origin.port, version: 2, enabled: false });
  const ack = await fixture.publishAndWait({ type: "distribution.updated", snapshot: updated });
  assert.deepEqual(ack, { type: "distribution.applied", edgeId: "test-edge-1", distributionId: snapshot.id, version: 2 });
  assert.equal((await request(fixture.edge.httpPort, snapshot.domainName, "/x")).status, 403);
  // A replayed older snapshot does not undo the newer one.
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  assert.equal((await request(fixture.edge.httpPort, snapshot.domainName, "/x")).status, 403);
  await fixture.publishAndWait({ type: "distribution.deleted", distributionId: snapshot.id, version: 3 });
  const deleted = await request(fixture.edge.httpPort, snapshot.domainName, "/x");
  assert.equal(deleted.status, 403);
  assert.match(deleted.body.toString(), /no distribution serves this host/);
});

test("snapshot that fails to compile", async (t) => {
  const { fixture, snapshot, origin } = await setup(t);
  // A path pattern that is not a string cannot be compiled.
  const broken = customSnapshot({ originPort: origin.port, version: 2, behaviors: [{ PathPattern: 5 as unknown as string }] });
  const ack = await fixture.publishAndWait({ type: "distribution.updated", snapshot: broken });
  assert.equal(ack.type, "distribution.applied");
  // The previous routes stay, and later messages are not held back.
  assert.equal((await request(fixture.edge.httpPort, snapshot.domainName, "/x")).status, 200);
  const disabled = customSnapshot({ originPort: origin.port, version: 3, enabled: false });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot: disabled });
  assert.equal((await request(fixture.edge.httpPort, snapshot.domainName, "/x")).status, 403);
});

test("redirect-to-https keeps the HTTPS port", async (t) => {
  const { fixture, snapshot, origin } = await setup(t, { defaultBehavior: { ViewerProtocolPolicy: "redirect-to-https" } });
  const response = await request(fixture.edge.httpPort, `${snapshot.domainName}:${fixture.edge.httpPort}`, "/a/b?x=1&y=%20");
  assert.equal(response.status, 301);
  assert.equal(
    response.headers.location,
    `https://${snapshot.domainName}:${fixture.edge.httpsPort}/a/b?x=1&y=%20`,
  );
  assert.equal(response.headers["x-cache"], "Redirect from portico");
  assert.equal(fixture.metrics.records[0]!.resultType, "Redirect");
  assert.equal(origin.hits(), 0);
});

test("https-only rejects plain HTTP", async (t) => {
  const { fixture, snapshot } = await setup(t, { defaultBehavior: { ViewerProtocolPolicy: "https-only" } });
  const response = await request(fixture.edge.httpPort, snapshot.domainName, "/");
  assert.equal(response.status, 403);
});

test("HTTPS works with the generated CA", async (t) => {
  const { fixture, snapshot } = await setup(t, { defaultBehavior: { ViewerProtocolPolicy: "https-only" } });
  const ca = await readFile(fixture.edge.caCertificatePath, "utf8");
  assert.match(ca, /BEGIN CERTIFICATE/);
  const keyMode = (await stat(fixture.edge.caCertificatePath.replace(/ca\.crt$/, "ca.key"))).mode & 0o777;
  assert.equal(keyMode, 0o600);
  const response = await new Promise<{ status: number; body: string; xCache: string | undefined }>((resolve, reject) => {
    const outgoing = httpsRequest(
      {
        host: "127.0.0.1",
        port: fixture.edge.httpsPort,
        servername: snapshot.domainName,
        headers: { host: snapshot.domainName },
        path: "/secure",
        ca,
      },
      (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, xCache: res.headers["x-cache"] as string }));
      },
    );
    outgoing.on("error", reject);
    outgoing.end();
  });
  assert.equal(response.status, 200);
  assert.equal(response.body, "GET /secure ");
  assert.equal(fixture.metrics.records[0]!.protocol, "https");

  // A name outside the zone fails verification against the same CA.
  await assert.rejects(
    new Promise((resolve, reject) => {
      const outgoing = httpsRequest(
        { host: "127.0.0.1", port: fixture.edge.httpsPort, servername: "other.example.test", ca, path: "/" },
        resolve,
      );
      outgoing.on("error", reject);
      outgoing.end();
    }),
    /altnames|Hostname/,
  );
});

test("path patterns pick the first matching behavior", async (t) => {
  const { fixture, snapshot, origin } = await setup(t, {
    behaviors: [
      { PathPattern: "/api/*", MinTTL: 0, DefaultTTL: 0, MaxTTL: 0, AllowedMethods: { Quantity: 7, Items: ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"] } },
      { PathPattern: "img/??.png", ViewerProtocolPolicy: "https-only" },
      { PathPattern: "/API/*", ViewerProtocolPolicy: "https-only" },
      { PathPattern: "/static-v2/*", ViewerProtocolPolicy: "https-only" },
    ],
  });
  const get = (path: string, method = "GET", body?: Buffer) =>
    request(fixture.edge.httpPort, snapshot.domainName, path, { method, ...(body ? { body } : {}) });
  assert.equal((await get("/img/ab.png")).status, 403);
  assert.equal((await get("/img/abc.png")).status, 200);
  // Patterns are case-sensitive: /API/* does not catch /api/.
  assert.equal((await get("/api/list")).status, 200);
  assert.equal((await get("/API/list")).status, 403);
  assert.equal((await get("/static-v2/site.css")).status, 403);
  assert.equal((await get("/static-v3/site.css")).status, 200);
  const posted = await get("/api/items", "POST", Buffer.from("payload"));
  assert.equal(posted.status, 200);
  assert.equal(posted.body.toString(), "POST /api/items payload");
  assert.equal(posted.headers["x-cache"], "Miss from portico");
  const postRecord = fixture.metrics.records.at(-1)!;
  assert.equal(postRecord.bytesUploaded, 7);
  // POST is not allowed by the default behavior.
  assert.equal((await get("/page", "POST", Buffer.from("x"))).status, 403);
  assert.equal(origin.requests.filter((r) => r.method === "POST").length, 1);
});

test("default root object serves slash", async (t) => {
  const { fixture, snapshot, origin } = await setup(t, { defaultRootObject: "index.html" });
  const root = await request(fixture.edge.httpPort, snapshot.domainName, "/");
  assert.equal(root.body.toString(), "GET /index.html ");
  const sub = await request(fixture.edge.httpPort, snapshot.domainName, "/sub/");
  assert.equal(sub.body.toString(), "GET /sub/ ");
  const ack = await fixture.publishAndWait({
    type: "invalidation.created",
    distributionId: snapshot.id,
    invalidationId: "I9",
    paths: ["/"],
  });
  assert.equal(ack.type, "invalidation.completed");
  const again = await request(fixture.edge.httpPort, snapshot.domainName, "/");
  assert.equal(again.headers["x-cache"], "Miss from portico");
  assert.equal(origin.hits("/index.html"), 2);

  // `/` and the root object share one entry, so either path purges it, whichever request filled it.
  const purge = (invalidationId: string, path: string) =>
    fixture.publishAndWait({ type: "invalidation.created", distributionId: snapshot.id, invalidationId, paths: [path] });
  await purge("I10", "/index.html");
  const byName = await request(fixture.edge.httpPort, snapshot.domainName, "/index.html");
  assert.equal(byName.headers["x-cache"], "Miss from portico");
  assert.equal((await request(fixture.edge.httpPort, snapshot.domainName, "/")).headers["x-cache"], "Hit from portico");
  await purge("I11", "/");
  assert.equal((await request(fixture.edge.httpPort, snapshot.domainName, "/")).headers["x-cache"], "Miss from portico");
  assert.equal(origin.hits("/index.html"), 4);
});

test("query strings and cookies follow ForwardedValues", async (t) => {
  const { fixture, snapshot, origin } = await setup(t, {
    defaultBehavior: {
      ForwardedValues: {
        QueryString: true,
        QueryStringCacheKeys: { Quantity: 1, Items: ["v"] },
        Cookies: { Forward: "whitelist", WhitelistedNames: { Quantity: 1, Items: ["lang*"] } },
        Headers: { Quantity: 1, Items: ["X-Variant"] },
      },
    },
  });
  const get = (path: string, headers: Record<string, string> = {}) =>
    request(fixture.edge.httpPort, snapshot.domainName, path, { headers });
  const first = await get("/q?v=1&utm=a", { cookie: "session=secret; language=en" });
  assert.equal(first.body.toString(), "GET /q?v=1 ");
  assert.equal(origin.requests[0]!.headers.cookie, "language=en");
  // set-cookie passes when cookies are forwarded.
  assert.equal(first.headers["set-cookie"]?.[0], "s=1");
  assert.equal((await get("/q?utm=b&v=1", { cookie: "language=en; session=other" })).headers["x-cache"], "Hit from portico");
  assert.equal((await get("/q?v=2")).headers["x-cache"], "Miss from portico");
  assert.equal((await get("/q?v=1", { cookie: "language=fr" })).headers["x-cache"], "Miss from portico");
  assert.equal((await get("/q?v=1", { cookie: "language=en", "x-variant": "b" })).headers["x-cache"], "Miss from portico");
  assert.equal(origin.requests.at(-1)!.headers["x-variant"], "b");
  assert.equal(origin.hits(), 4);
});

test("without forwarded values nothing extra reaches the origin", async (t) => {
  const { fixture, snapshot, origin } = await setup(t);
  const response = await request(fixture.edge.httpPort, snapshot.domainName, "/n?a=1", {
    headers: { cookie: "a=1", "x-custom": "1", authorization: "Bearer t" },
  });
  assert.equal(response.body.toString(), "GET /n ");
  assert.equal(response.headers["set-cookie"], undefined);
  const seen = origin.requests[0]!.headers;
  assert.equal(seen.cookie, undefined);
  assert.equal(seen["x-custom"], undefined);
  assert.equal(seen.authorization, undefined);
  assert.equal(seen["x-forwarded-for"], "127.0.0.1");
});

test("origin down gives 502 and counts an error", async (t) => {
  const fixture = await startTestEdge();
  t.after(() => fixture.close());
  const origin = await startOrigin((_req, res) => {
    res.end();
  });
  const port = origin.port;
  await origin.close();
  const snapshot = customSnapshot({ originPort: port });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  const response = await request(fixture.edge.httpPort, snapshot.domainName, "/x");
  assert.equal(response.status, 502);
  assert.equal(response.headers["x-cache"], "Error from portico");
  assert.equal(fixture.metrics.records[0]!.resultType, "Error");
  assert.equal(fixture.metrics.records[0]!.status, 502);

  // The failure is cached for 10 s, so the origin comes back unseen until then.
  const restarted = await startOrigin((_req, res) => {
    res.end("back");
  }, port);
  t.after(() => restarted.close());
  const cached = await request(fixture.edge.httpPort, snapshot.domainName, "/x");
  assert.equal(cached.status, 502);
  assert.match(String(cached.headers["cache-status"]), /^portico; hit; ttl=\d+$/);
  assert.equal(restarted.hits(), 0);
  // An invalidation removes it like any cached error.
  await fixture.publishAndWait({ type: "invalidation.created", distributionId: snapshot.id, invalidationId: "I1", paths: ["/x"] });
  const after = await request(fixture.edge.httpPort, snapshot.domainName, "/x");
  assert.equal(after.status, 200);
  assert.equal(after.body.toString(), "back");
});
