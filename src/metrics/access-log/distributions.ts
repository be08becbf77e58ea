import type { ClusterMessage, ControlChannel, DistributionSnapshot } from "../../cluster/types.js";
import { bucketOfS3Domain } from "../../origin/s3.js";

/** The fields of one deployed distribution that the access log and `portico status` use. */
export interface DistributionLogInfo {
  id: string;
  domainName: string;
  version: number;
  enabled: boolean;
  comment: string;
  /** Logging.Enabled with a bucket name that names an embedded-store bucket. */
  loggingEnabled: boolean;
  /** The bucket of Logging.Bucket (`<bucket>.s3.amazonaws.com`), when it names one. */
  logBucket: string | undefined;
  /** Logging.Bucket as configured, for messages. */
  logBucketDomain: string;
  logPrefix: string;
  includeCookies: boolean;
}

/**
 * The latest deployed snapshot of each distribution, as the control plane
 * publishes it. The access-log writer reads Logging settings from it and the
 * status route lists distributions with their config versions.
 */
export class DistributionDirectory {
  private readonly distributions = new Map<string, DistributionLogInfo>();
  private readonly deletionListeners: Array<(distributionId: string) => void> = [];

  get(distributionId: string): DistributionLogInfo | undefined {
    return this.distributions.get(distributionId);
  }

  all(): DistributionLogInfo[] {
    return [...this.distributions.values()];
  }

  observe(message: ClusterMessage): void {
    if (message.type === "distribution.updated") {
      this.distributions.set(message.snapshot.id, infoOf(message.snapshot));
    } else if (message.type === "distribution.deleted") {
      this.distributions.delete(message.distributionId);
      for (const listener of this.deletionListeners) listener(message.distributionId);
    }
  }

  /** Calls `listener` with the id of each distribution deleted from now on. */
  onDeleted(listener: (distributionId: string) => void): void {
    this.deletionListeners.push(listener);
  }

  /**
   * Returns a channel that passes every call to `channel` and observes each
   * published message first, so the directory receives every message the edges receive.
   */
  observing(channel: ControlChannel): ControlChannel {
    return {
      publish: (message) => {
        this.observe(message);
        return channel.publish(message);
      },
      onAck: (listener) => channel.onAck(listener),
      liveEdges: () => channel.liveEdges(),
      owe: (edgeIds, message) => channel.owe(edgeIds, message),
    };
  }
}

function infoOf(snapshot: DistributionSnapshot): DistributionLogInfo {
  const config = snapshot.config;
  const logging = config.Logging;
  const logBucketDomain = logging?.Bucket ?? "";
  const logBucket = logBucketDomain === "" ? undefined : bucketOfS3Domain(logBucketDomain);
  return {
    id: snapshot.id,
    domainName: snapshot.domainName,
    version: snapshot.version,
    enabled: config.Enabled === true,
    comment: config.Comment ?? "",
    loggingEnabled: logging?.Enabled === true,
    logBucket,
    logBucketDomain,
    logPrefix: logging?.Prefix ?? "",
    includeCookies: logging?.IncludeCookies === true,
  };
}
