import type { OriginPools } from "./pools.js";
import { sendPooled } from "./pools.js";
import type { Origin, OriginRequest, OriginResponse } from "./types.js";

export interface CustomOriginSettings {
  id: string;
  domainName: string;
  originPath: string;
  httpPort: number;
  httpsPort: number;
  protocolPolicy: "http-only" | "https-only" | "match-viewer";
  readTimeoutSeconds: number;
  keepAliveTimeoutSeconds: number;
  connectionTimeoutSeconds: number;
  connectionAttempts: number;
  customHeaders: Record<string, string>;
  pools: OriginPools;
}

/** An HTTP or HTTPS origin server, reached through a keep-alive pool per scheme, host and port. */
export class CustomOrigin implements Origin {
  readonly id: string;

  constructor(private readonly settings: CustomOriginSettings) {
    this.id = settings.id;
  }

  async fetch(request: OriginRequest): Promise<OriginResponse> {
    const settings = this.settings;
    const secure =
      settings.protocolPolicy === "https-only" ||
      (settings.protocolPolicy === "match-viewer" && request.viewerProtocol === "https");
    const scheme = secure ? "https" : "http";
    const port = secure ? settings.httpsPort : settings.httpPort;
    const defaultPort = secure ? 443 : 80;
    const hostname = settings.domainName.includes(":") ? `[${settings.domainName}]` : settings.domainName;
    const authority = port === defaultPort ? hostname : `${hostname}:${port}`;
    const origin = `${scheme}://${authority}`;

    const path = `${settings.originPath}${request.path}`;
    const target = request.query === "" ? path : `${path}?${request.query}`;
    // The origin sees its own name as Host unless the behavior forwards the viewer's.
    const headers: Record<string, string> = { host: authority, ...request.headers, ...settings.customHeaders };

    const pool = settings.pools.get(origin, {
      connectTimeoutMs: settings.connectionTimeoutSeconds * 1000,
      keepAliveTimeoutMs: settings.keepAliveTimeoutSeconds * 1000,
    });
    return sendPooled(pool, origin, {
      method: request.method,
      target,
      headers,
      body: request.body,
      readTimeoutMs: settings.readTimeoutSeconds * 1000,
      connectTimeoutMs: settings.connectionTimeoutSeconds * 1000,
      connectionAttempts: settings.connectionAttempts,
    });
  }
}
