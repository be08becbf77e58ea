import type { IncomingMessage, ServerResponse } from "node:http";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { CredentialStore } from "../api/auth/principal.js";
import type { ControlChannel } from "../cluster/types.js";
import type { Logger } from "../common/logger.js";
import type { ControlPlane } from "../control/index.js";
import type { MetricsReader } from "../metrics/index.js";
import { DashboardData } from "./data.js";
import { isSameOrigin, methodNotAllowed, queryOf, readCookie, readForm, redirect, send, sendJson } from "./http.js";
import { checkLogin, LoginRateLimiter, secretsEqual } from "./login.js";
import { ASSETS_PATH, DASHBOARD_PATH, LOGIN_PATH, LOGOUT_PATH, renderLoginPage } from "./pages.js";
import { isSeriesRange, SeriesReader } from "./series.js";
import { loadSessionKey, SESSION_COOKIE, SESSION_TTL_MS, SessionSigner, type Session } from "./session.js";

export type AdminRoute = (request: IncomingMessage, response: ServerResponse) => void | Promise<void>;

export interface DashboardOptions {
  /** Folder that keeps the session signing key. */
  dataDir: string;
  credentials: CredentialStore;
  control: ControlPlane;
  channel: ControlChannel;
  metrics: MetricsReader;
  log: Logger;
  /** Clock for sessions and login limits; defaults to `Date.now`. */
  now?: () => number;
}

export interface Dashboard {
  /** Routes to mount on the API server's `/_portico/` prefix, by exact path, and `<dashboard>/*` for every other dashboard path. */
  routes: Map<string, AdminRoute>;
}

/**
 * Source folder of the page's static files. It is reached from both
 * `src/dashboard` (tsx) and `dist/dashboard` (compiled), because tsc does not
 * copy non-TypeScript files.
 */
const ASSETS_DIR = join(import.meta.dirname, "..", "..", "src", "dashboard", "assets");

interface Asset {
  contentType: string;
  body: Buffer;
  /** Served without a session, because the login page needs it. */
  isPublic: boolean;
}

async function loadAssets(): Promise<Map<string, Asset>> {
  const require = createRequire(import.meta.url);
  const files: Array<[string, string, string, boolean]> = [
    ["dashboard.css", join(ASSETS_DIR, "dashboard.css"), "text/css; charset=utf-8", true],
    ["dashboard.js", join(ASSETS_DIR, "dashboard.js"), "text/javascript; charset=utf-8", false],
    ["dashboard.html", join(ASSETS_DIR, "dashboard.html"), "text/html; charset=utf-8", false],
    // uPlot is served from node_modules so the page works without internet access.
    ["uPlot.iife.min.js", require.resolve("uplot/dist/uPlot.iife.min.js"), "text/javascript; charset=utf-8", false],
    ["uPlot.min.css", require.resolve("uplot/dist/uPlot.min.css"), "text/css; charset=utf-8", false],
  ];
  const assets = new Map<string, Asset>();
  for (const [name, path, contentType, isPublic] of files) {
    assets.set(name, { contentType, body: await readFile(path), isPublic });
  }
  return assets;
}

/** Builds the `Set-Cookie` value; `Secure` only over TLS, since the API port usually speaks plain HTTP on loopback. */
function sessionCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return (
    `${SESSION_COOKIE}=${value}; Path=${DASHBOARD_PATH}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict` +
    (secure ? "; Secure" : "")
  );
}

function isTls(request: IncomingMessage): boolean {
  return "encrypted" in request.socket && request.socket.encrypted === true;
}

/**
 * Creates the web dashboard: a login form checked against the credential
 * store, a signed session cookie, the page and its JSON data routes.
 */
export async function createDashboard(options: DashboardOptions): Promise<Dashboard> {
  const now = options.now ?? Date.now;
  const log = options.log;
  const signer = new SessionSigner(await loadSessionKey(options.dataDir), now);
  const limiter = new LoginRateLimiter(now);
  const data = new DashboardData(options.control, options.channel);
  const series = new SeriesReader(options.metrics);
  const assets = await loadAssets();

  /** Returns the request's session when its cookie is valid and its key still exists unchanged. */
  const sessionOf = (request: IncomingMessage): Session | undefined => {
    const cookie = readCookie(request, SESSION_COOKIE);
    if (cookie === undefined) return undefined;
    const session = signer.verify(cookie);
    if (session === undefined) return undefined;
    const key = options.credentials.lookup(session.accessKeyId);
    if (key === undefined || (key.principal.type !== "root" && key.principal.type !== "user")) return undefined;
    if (!secretsEqual(signer.fingerprint(key.secretAccessKey), session.keyFingerprint)) return undefined;
    return session;
  };

  /** Wraps a route so that a request without a valid session goes to the login page. */
  const withSession =
    (handler: (request: IncomingMessage, response: ServerResponse, session: Session) => void | Promise<void>) =>
    (request: IncomingMessage, response: ServerResponse): void | Promise<void> => {
      const session = sessionOf(request);
      if (session === undefined) {
        redirect(response, LOGIN_PATH);
        return;
      }
      return handler(request, response, session);
    };

  const getOnly =
    (handler: (request: IncomingMessage, response: ServerResponse, session: Session) => void | Promise<void>) =>
    (request: IncomingMessage, response: ServerResponse, session: Session): void | Promise<void> => {
      if (request.method !== "GET" && request.method !== "HEAD") {
        methodNotAllowed(response, "GET, HEAD");
        return;
      }
      return handler(request, response, session);
    };

  const login = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (request.method === "GET" || request.method === "HEAD") {
      if (sessionOf(request) !== undefined) {
        redirect(response, DASHBOARD_PATH);
        return;
      }
      send(response, 200, "text/html; charset=utf-8", renderLoginPage({}));
      return;
    }
    if (request.method !== "POST") {
      methodNotAllowed(response, "GET, HEAD, POST");
      return;
    }
    const clientIp = request.socket.remoteAddress ?? "";
    // A cross-site form could otherwise log a victim's browser into the
    // attacker's account (login CSRF).
    if (!isSameOrigin(request)) {
      log.info({ clientIp }, "dashboard login rejected: cross-site request");
      send(response, 403, "text/plain; charset=utf-8", "cross-site login requests are rejected\n");
      return;
    }
    const retryAfterSeconds = limiter.retryAfterSeconds(clientIp);
    if (retryAfterSeconds > 0) {
      log.warn({ clientIp, retryAfterSeconds }, "dashboard login rejected: too many failed attempts");
      const page = renderLoginPage({ error: `Too many failed sign-in attempts. Try again in ${retryAfterSeconds} s.` });
      send(response, 429, "text/html; charset=utf-8", page, { "retry-after": String(retryAfterSeconds) });
      return;
    }
    const form = await readForm(request);
    const accessKeyId = form?.get("accessKeyId")?.trim() ?? "";
    const secretAccessKey = form?.get("secretAccessKey") ?? "";
    const key = checkLogin(options.credentials, accessKeyId, secretAccessKey);
    if (key === undefined) {
      limiter.recordFailure(clientIp);
      // The typed key id is not logged: people paste secrets into the wrong field.
      log.info({ clientIp, knownAccessKeyId: options.credentials.lookup(accessKeyId) !== undefined }, "dashboard login failed");
      const page = renderLoginPage({ error: "The access key ID or secret access key is incorrect.", accessKeyId });
      send(response, 401, "text/html; charset=utf-8", page);
      return;
    }
    limiter.recordSuccess(clientIp);
    const { value } = signer.issue(key.accessKeyId, key.secretAccessKey);
    log.info({ clientIp, accessKeyId: key.accessKeyId }, "dashboard login succeeded");
    redirect(response, DASHBOARD_PATH, {
      "set-cookie": sessionCookie(value, SESSION_TTL_MS / 1000, isTls(request)),
    });
  };

  const logout = (request: IncomingMessage, response: ServerResponse): void => {
    if (request.method !== "POST") {
      methodNotAllowed(response, "POST");
      return;
    }
    if (!isSameOrigin(request)) {
      send(response, 403, "text/plain; charset=utf-8", "cross-site logout requests are rejected\n");
      return;
    }
    redirect(response, LOGIN_PATH, { "set-cookie": sessionCookie("", 0, isTls(request)) });
  };

  const serveAsset = (name: string) => (request: IncomingMessage, response: ServerResponse) => {
    const asset = assets.get(name)!;
    if (request.method !== "GET" && request.method !== "HEAD") {
      methodNotAllowed(response, "GET, HEAD");
      return;
    }
    send(response, 200, asset.contentType, asset.body);
  };

  const routes = new Map<string, AdminRoute>();
  routes.set(DASHBOARD_PATH, withSession(getOnly((request, response) => serveAsset("dashboard.html")(request, response))));
  routes.set(`${DASHBOARD_PATH}/`, (_request, response) => redirect(response, DASHBOARD_PATH));
  routes.set(LOGIN_PATH, login);
  routes.set(LOGOUT_PATH, logout);
  for (const [name, asset] of assets) {
    if (name === "dashboard.html") continue;
    routes.set(`${ASSETS_PATH}/${name}`, asset.isPublic ? serveAsset(name) : withSession(getOnly(serveAsset(name))));
  }

  const api = `${DASHBOARD_PATH}/api`;
  routes.set(
    `${api}/session`,
    withSession(getOnly((_request, response, session) => {
      sendJson(response, { accessKeyId: session.accessKeyId, expiresAtMs: session.expiresAtMs });
    })),
  );
  routes.set(
    `${api}/distributions`,
    withSession(getOnly((_request, response) => sendJson(response, { nowMs: now(), distributions: data.distributions() }))),
  );
  routes.set(
    `${api}/edges`,
    withSession(getOnly((_request, response) => sendJson(response, { nowMs: now(), edges: data.edges() }))),
  );
  routes.set(
    `${api}/invalidations`,
    withSession(getOnly((_request, response) => {
      const ids = data.distributions().map((distribution) => distribution.id);
      sendJson(response, { nowMs: now(), invalidations: data.invalidations(ids) });
    })),
  );
  routes.set(
    `${api}/series`,
    withSession(getOnly(async (request, response) => {
      const query = queryOf(request);
      const distributionId = query.get("distributionId") ?? "";
      const range = query.get("range") ?? "hour";
      if (!isSeriesRange(range)) {
        send(response, 400, "application/json; charset=utf-8", JSON.stringify({ error: "range must be hour, day or week" }));
        return;
      }
      if (!/^E[A-Z0-9]{13}$/.test(distributionId)) {
        send(response, 400, "application/json; charset=utf-8", JSON.stringify({ error: "distributionId must be a distribution id such as E1A2B3C4D5E6F7" }));
        return;
      }
      await options.metrics.sync();
      sendJson(response, series.read(distributionId, range));
    })),
  );
  // Any other dashboard address redirects to the sign-in form without a session, like the ones above.
  routes.set(
    `${DASHBOARD_PATH}/*`,
    withSession((_request, response) => send(response, 404, "text/plain; charset=utf-8", "not found\n")),
  );
  return { routes };
}
