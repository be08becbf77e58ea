import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, request as sendRequest } from "node:http";
import { connect as connectHttp2 } from "node:http2";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { CreateDistributionCommand, waitUntilDistributionDeployed } from "@aws-sdk/client-cloudfront";
import { createClients } from "../../examples/lib/portico-clients.js";
import { startPorticoProcess, type PorticoProcess } from "../helpers/portico-process.js";

// A custom origin run by `python3 -m http.server`, behind the managed
// CachingDisabled policy and a custom error page for 404, served by a real
// `portico up`. http.server sends a head alone for HEAD, and usually sends a
// small 404 whole before the edge discards it for the page. undici emits
// RequestAbortedError when such a fully received but unread body is
// destroyed, and with no listener on the body that error ended the process.

const CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
const ERROR_PAGE = "<h1>custom not found page</h1>\n";
const PRESENT = "present\n";
const BIG_BYTES = 4 * 1024 * 1024;

const pythonCheck = spawnSync("python3", ["--version"]);
const skip =
  pythonCheck.error === undefined && pythonCheck.status === 0
    ? false
    : "python3 is not installed, so the http.server origin cannot start";

interface PythonOrigin {
  child: ChildProcess;
  port: number;
  /** Request lines logged so far, such as `GET /missing HTTP/1.1`. */
  requestLines: string[];
}

/** Starts `python3 -m http.server` on a free loopback port, serving `directory`. */
async function startPythonOrigin(directory: string): Promise<PythonOrigin> {
  const child = spawn("python3", ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", directory], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const requestLines: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (line) => {
    const match = /"([A-Z]+ \S+ HTTP\/1\.[01])"/.exec(line);
    if (match !== null) requestLines.push(match[1]!);
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("python3 -m http.server did not print its port within 10 s")), 10_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const match = /port (\d+)/.exec(line);
      if (match === null) return;
      clearTimeout(timer);
      resolve(Number(match[1]));
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`python3 -m http.server exited with code ${code} before it listened`));
    });
  });
  return { child, port, requestLines };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe("python http.server origin with CachingDisabled", { skip, timeout: 60_000 }, () => {
  let root: string;
  let python: PythonOrigin;
  let portico: PorticoProcess;
  let agent: Agent;
  /** One distribution per ResponseCode of the 404 rule: the original status, and 200. */
  const hosts = new Map<string, string>();

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "portico-python-origin-"));
    const site = join(root, "site");
    await mkdir(site);
    await writeFile(join(site, "404.html"), ERROR_PAGE);
    await writeFile(join(site, "present.txt"), PRESENT);
    await writeFile(join(site, "big.bin"), Buffer.alloc(BIG_BYTES, 0x61));
    python = await startPythonOrigin(site);
    // Strict mode ends the process on an unhandled rejection even if a handler is installed.
    portico = await startPorticoProcess(join(root, "data"), { NODE_OPTIONS: "--unhandled-rejections=strict" });
    agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const { cloudfront } = createClients(portico.target);
    for (const responseCode of ["404", "200"]) {
      const created = await cloudfront.send(
        new CreateDistributionCommand({
          DistributionConfig: {
            CallerReference: `python-origin-${responseCode}`,
            Comment: "python http.server origin",
            Enabled: true,
            Origins: {
              Quantity: 1,
              Items: [
                {
                  Id: "python",
                  DomainName: "127.0.0.1",
                  CustomOriginConfig: { HTTPPort: python.port, HTTPSPort: 443, OriginProtocolPolicy: "http-only" },
                },
              ],
            },
            DefaultCacheBehavior: { TargetOriginId: "python", ViewerProtocolPolicy: "allow-all", CachePolicyId: CACHING_DISABLED },
            CustomErrorResponses: {
              Quantity: 1,
              Items: [{ ErrorCode: 404, ResponsePagePath: "/404.html", ResponseCode: responseCode, ErrorCachingMinTTL: 10 }],
            },
          },
        }),
      );
      const distribution = created.Distribution!;
      await waitUntilDistributionDeployed({ client: cloudfront, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { Id: distribution.Id! });
      hosts.set(responseCode, distribution.DomainName!);
    }
  });

  after(async () => {
    agent?.destroy();
    // Only a failed test leaves the process running here.
    if (portico !== undefined) await portico.stop("SIGKILL");
    python?.child.kill();
    if (root !== undefined) await rm(root, { recursive: true, force: true });
  });

  function get(host: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const outgoing = sendRequest(
        {
          host: "127.0.0.1",
          port: portico.target.httpPort,
          path,
          method: options.method ?? "GET",
          headers: { host, ...options.headers },
          agent,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () =>
            resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString() }),
          );
          response.on("error", reject);
        },
      );
      outgoing.on("error", (error) => {
        // A reset connection is most often the process ending, whose standard error says why.
        setTimeout(() => {
          const child = portico.child;
          if (child.exitCode === null && child.signalCode === null) reject(error);
          else reject(new Error(`portico up exited during ${path}:\n${portico.stderr()}`, { cause: error }));
        }, 200);
      });
      outgoing.end();
    });
  }

  /** Sends a GET on a new connection and closes it after `closeAfterBytes` bytes of the response (0: at once). */
  function leaveEarly(host: string, path: string, closeAfterBytes: number, extraHeaders = ""): Promise<void> {
    return new Promise((resolve) => {
      const socket = connect(portico.target.httpPort, "127.0.0.1", () => {
        socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extraHeaders}\r\n`);
        if (closeAfterBytes === 0) socket.destroy();
      });
      let received = 0;
      socket.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (received >= closeAfterBytes) socket.destroy();
      });
      socket.on("error", () => {});
      socket.on("close", () => resolve());
      setTimeout(() => socket.destroy(), 5_000).unref();
    });
  }

  /** Fails with the process's standard error when `portico up` has exited. */
  function assertRunning(): void {
    const child = portico.child;
    assert.ok(
      child.exitCode === null && child.signalCode === null,
      `portico up exited (code ${child.exitCode}, signal ${child.signalCode}):\n${portico.stderr()}`,
    );
  }

  function originHits(requestLine: string): number {
    return python.requestLines.filter((line) => line === requestLine).length;
  }

  /** Waits until the origin has logged `count` requests for `requestLine`, for at most 5 s. */
  async function waitForOriginHits(requestLine: string, count: number): Promise<number> {
    const deadline = Date.now() + 5_000;
    while (originHits(requestLine) < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    return originHits(requestLine);
  }

  test("404 replaced by the page each time", async () => {
    for (const [responseCode, host] of hosts) {
      const before = originHits("GET /missing HTTP/1.1");
      for (let round = 0; round < 5; round++) {
        const reply = await get(host, "/missing");
        assert.equal(reply.status, Number(responseCode));
        assert.equal(reply.body, ERROR_PAGE);
        assert.match(String(reply.headers["cache-status"]), /detail=caching-disabled/);
      }
      // CachingDisabled sends every request to the origin.
      assert.equal(await waitForOriginHits("GET /missing HTTP/1.1", before + 5), before + 5);
    }
    assertRunning();
  });

  test("HEAD and Range on a 404", async () => {
    for (const [responseCode, host] of hosts) {
      const head = await get(host, "/missing", { method: "HEAD" });
      assert.equal(head.status, Number(responseCode));
      assert.equal(head.body, "");
      // The page request drops Range, so the whole page is served.
      const ranged = await get(host, "/missing", { headers: { range: "bytes=0-3" } });
      assert.equal(ranged.status, Number(responseCode));
      assert.equal(ranged.body, ERROR_PAGE);
      const partial = await get(host, "/big.bin", { headers: { range: "bytes=10-19" } });
      assert.equal(partial.status, 206);
      assert.equal(partial.body, "a".repeat(10));
      const unsatisfiable = await get(host, "/big.bin", { headers: { range: `bytes=${BIG_BYTES}-` } });
      assert.equal(unsatisfiable.status, 416);
      const headRange = await get(host, "/big.bin", { method: "HEAD", headers: { range: "bytes=0-1" } });
      assert.equal(headRange.status, 206);
    }
    assertRunning();
  });

  test("viewers that leave mid-response", async () => {
    for (const host of hosts.values()) {
      await Promise.all([
        leaveEarly(host, "/missing", 0),
        leaveEarly(host, "/missing", 1),
        leaveEarly(host, "/missing", 0, "Range: bytes=0-1\r\n"),
        leaveEarly(host, "/big.bin", 0),
        leaveEarly(host, "/big.bin", 1),
        leaveEarly(host, "/big.bin", 64 * 1024),
        leaveEarly(host, "/big.bin", 1, "Range: bytes=0-3000000\r\n"),
      ]);
    }
    // Discarded bodies end their origin requests after the viewers left.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assertRunning();
    for (const [responseCode, host] of hosts) {
      const reply = await get(host, "/missing");
      assert.equal(reply.status, Number(responseCode));
      assert.equal(reply.body, ERROR_PAGE);
    }
  });

  test("concurrent requests share keep-alive", async () => {
    const requests: Array<Promise<{ path: string; method: string; responseCode: string; reply: Reply }>> = [];
    for (const [responseCode, host] of hosts) {
      for (let i = 0; i < 20; i++) {
        const path = i % 4 === 0 ? "/present.txt" : `/missing-${i % 5}`;
        const method = i % 3 === 0 ? "HEAD" : "GET";
        requests.push(get(host, path, { method }).then((reply) => ({ path, method, responseCode, reply })));
      }
    }
    for (const { path, method, responseCode, reply } of await Promise.all(requests)) {
      const present = path === "/present.txt";
      const expectedStatus = present ? 200 : Number(responseCode);
      let expectedBody = present ? PRESENT : ERROR_PAGE;
      if (method === "HEAD") expectedBody = "";
      assert.equal(reply.status, expectedStatus, `${method} ${path}`);
      assert.equal(reply.body, expectedBody, `${method} ${path}`);
    }
    assertRunning();
  });

  test("slow HTTP/2 viewers of a large file", async () => {
    const ca = await readFile(portico.target.caCertificatePath);
    for (const host of hosts.values()) {
      const session = connectHttp2(`https://127.0.0.1:${portico.target.httpsPort}`, { ca, servername: host });
      session.on("error", () => {});
      try {
        // HTTP/2 flow control backs the edge up at once, so the origin body waits
        // while http.server sends the rest and closes its connection.
        const reads = Array.from({ length: 3 }, async () => {
          const stream = session.request({ ":path": "/big.bin", ":authority": host });
          stream.pause();
          await new Promise((resolve) => setTimeout(resolve, 300));
          stream.resume();
          let bytes = 0;
          for await (const chunk of stream as AsyncIterable<Buffer>) bytes += chunk.length;
          return bytes;
        });
        assert.deepEqual(await Promise.all(reads), [BIG_BYTES, BIG_BYTES, BIG_BYTES]);
      } finally {
        session.close();
      }
    }
    assertRunning();
  });

  test("SIGTERM stops it after the traffic", async () => {
    assertRunning();
    // Shutdown closes the origin pools, which waits for every origin response
    // still open, so a body that the edge abandoned would hold it forever.
    const stopped = portico.stop("SIGTERM");
    const timeout = new Promise<"timed out">((resolve) => setTimeout(() => resolve("timed out"), 20_000).unref());
    const code = await Promise.race([stopped, timeout]);
    assert.equal(code, 0, `portico up did not exit with 0 within 20 s of SIGTERM (${code}):\n${portico.stderr()}`);
  });
});
