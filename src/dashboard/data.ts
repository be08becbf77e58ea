import type { ControlChannel } from "../cluster/types.js";
import type { ControlPlane } from "../control/index.js";

/** Invalidations listed per distribution, newest first. */
export const INVALIDATIONS_PER_DISTRIBUTION = 10;
/** Page size used to walk every distribution through the control plane's list. */
const LIST_PAGE_SIZE = 1000;

export interface DistributionView {
  id: string;
  arn: string;
  status: string;
  enabled: boolean;
  domainName: string;
  aliases: string[];
  comment: string;
  origins: Array<{ id: string; domainName: string; originPath: string; kind: "s3" | "custom" }>;
  /** The current config version; edges report which version they have applied. */
  configVersion: number;
  lastModifiedMs: number;
}

export interface EdgeView {
  edgeId: string;
  joinedAtMs: number;
  lastSeenAtMs: number;
  /** Applied config version per distribution id. */
  appliedVersions: Record<string, number>;
}

export interface InvalidationView {
  distributionId: string;
  id: string;
  status: string;
  createTimeMs: number;
  paths: string[];
}

/** Reads the control plane and the cluster channel into plain values for the page. */
export class DashboardData {
  constructor(
    private readonly control: ControlPlane,
    private readonly channel: ControlChannel,
  ) {}

  distributions(): DistributionView[] {
    const views: DistributionView[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = this.control.distributions.list(marker, LIST_PAGE_SIZE);
      for (const summary of page.Items ?? []) {
        const id = summary.Id ?? "";
        views.push({
          id,
          arn: summary.ARN ?? "",
          status: summary.Status ?? "",
          enabled: summary.Enabled ?? false,
          domainName: summary.DomainName ?? "",
          aliases: summary.Aliases?.Items ?? [],
          comment: summary.Comment ?? "",
          origins: (summary.Origins?.Items ?? []).map((origin) => ({
            id: origin.Id ?? "",
            domainName: origin.DomainName ?? "",
            originPath: origin.OriginPath ?? "",
            kind: origin.CustomOriginConfig === undefined ? "s3" : "custom",
          })),
          configVersion: this.control.distributions.configVersion(id),
          lastModifiedMs: summary.LastModifiedTime?.getTime() ?? 0,
        });
      }
      if (!page.IsTruncated || page.NextMarker === undefined) return views;
      marker = page.NextMarker;
    }
  }

  /** Lists the edges that the channel counts as live. An edge that left is not listed. */
  edges(): EdgeView[] {
    return this.channel
      .liveEdges()
      .map((edge) => ({
        edgeId: edge.edgeId,
        joinedAtMs: edge.joinedAtMs,
        lastSeenAtMs: edge.lastSeenAtMs,
        appliedVersions: Object.fromEntries(edge.appliedVersions),
      }))
      .sort((a, b) => a.edgeId.localeCompare(b.edgeId));
  }

  /** Lists the newest invalidations of each distribution, with their paths and status. */
  invalidations(distributionIds: string[]): InvalidationView[] {
    const views: InvalidationView[] = [];
    for (const distributionId of distributionIds) {
      const list = this.control.invalidations.list(distributionId, undefined, INVALIDATIONS_PER_DISTRIBUTION);
      for (const item of list.Items ?? []) {
        const invalidation = this.control.invalidations.get(distributionId, item.Id ?? "");
        views.push({
          distributionId,
          id: invalidation.Id ?? "",
          status: invalidation.Status ?? "",
          createTimeMs: invalidation.CreateTime?.getTime() ?? 0,
          paths: invalidation.InvalidationBatch?.Paths?.Items ?? [],
        });
      }
    }
    return views.sort((a, b) => b.createTimeMs - a.createTimeMs);
  }
}
