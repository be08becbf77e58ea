import type { Origin, OriginRequest, OriginResponse } from "./types.js";

/** Methods CloudFront fails over for; others go to the primary only. */
const FAILOVER_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * An origin group (OriginGroups in DistributionConfig). Requests go to the
 * primary member. When it fails without a response, or returns one of the
 * failover status codes, the same request goes to the secondary, as
 * CloudFront's "Optimize high availability with origin failover" describes.
 */
export class OriginGroup implements Origin {
  constructor(
    readonly id: string,
    private readonly primary: Origin,
    private readonly secondary: Origin,
    private readonly failoverStatuses: ReadonlySet<number>,
    private readonly onFailover: (details: { groupId: string; from: string; to: string; reason: string }) => void,
  ) {}

  async fetch(request: OriginRequest): Promise<OriginResponse> {
    if (!FAILOVER_METHODS.has(request.method)) return this.primary.fetch(request);

    let reason: string;
    try {
      const response = await this.primary.fetch(request);
      if (!this.failoverStatuses.has(response.status)) return response;
      response.body.resume();
      reason = `status ${response.status}`;
    } catch (error) {
      reason = (error as Error).message;
    }
    this.onFailover({ groupId: this.id, from: this.primary.id, to: this.secondary.id, reason });
    return this.secondary.fetch(request);
  }
}
