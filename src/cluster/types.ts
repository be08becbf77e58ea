import type {
  CachePolicyConfig,
  DistributionConfig,
  OriginAccessControlConfig,
  OriginRequestPolicyConfig,
  ResponseHeadersPolicyConfig,
} from "@aws-sdk/client-cloudfront";

/**
 * The deployed form of one distribution: what an edge needs to serve it.
 * Config objects use the AWS SDK's shapes, so the wire codec and the edge
 * agree on field names.
 */
export interface DistributionSnapshot {
  id: string;
  arn: string;
  /** `d` + 13 lowercase alphanumerics + `.` + zone. */
  domainName: string;
  /** Increases by one on every change of the config; edges acknowledge it. */
  version: number;
  config: DistributionConfig;
  /** The origin access controls that the config's origins name, by id. */
  originAccessControls: Record<string, OriginAccessControlConfig>;
  /**
   * The cache policies that the config's cache behaviors name, by id,
   * AWS-managed ones included. A change to a named policy republishes the
   * snapshot with a new version. The control plane always sets the three
   * policy records; they are optional so that snapshots built by hand for a
   * single component stay valid.
   */
  cachePolicies?: Record<string, CachePolicyConfig>;
  /** The origin request policies that the cache behaviors name, by id. */
  originRequestPolicies?: Record<string, OriginRequestPolicyConfig>;
  /** The response headers policies that the cache behaviors name, by id. */
  responseHeadersPolicies?: Record<string, ResponseHeadersPolicyConfig>;
}

/** Messages from the control plane to every edge, delivered in publish order. */
export type ClusterMessage =
  | { type: "distribution.updated"; snapshot: DistributionSnapshot }
  | { type: "distribution.deleted"; distributionId: string; version: number }
  | InvalidationMessage;

export interface InvalidationMessage {
  type: "invalidation.created";
  distributionId: string;
  invalidationId: string;
  /** Paths as the API accepted them: leading `/`, optional trailing `*`. */
  paths: string[];
}

/** Acknowledgements from an edge, sent once it has applied a message. */
export type EdgeAck =
  | { type: "distribution.applied"; edgeId: string; distributionId: string; version: number }
  | { type: "distribution.removed"; edgeId: string; distributionId: string; version: number }
  | { type: "invalidation.completed"; edgeId: string; distributionId: string; invalidationId: string };

export interface EdgeStatus {
  edgeId: string;
  joinedAtMs: number;
  lastSeenAtMs: number;
  /** The config version each distribution has on this edge. */
  appliedVersions: ReadonlyMap<string, number>;
}

/** The control plane's side of the cluster: publish state, watch acknowledgements. */
export interface ControlChannel {
  /** Resolves once the message is durable in the channel, before any edge has applied it. */
  publish(message: ClusterMessage): Promise<void>;
  /** Calls `listener` for every acknowledgement; returns a function that stops it. */
  onAck(listener: (ack: EdgeAck) => void): () => void;
  /** The edges currently alive. */
  liveEdges(): EdgeStatus[];
  /**
   * Delivers an invalidation to edges that owe its acknowledgement but are not
   * live, as soon as each joins, as after a restart of the control plane.
   */
  owe(edgeIds: readonly string[], message: InvalidationMessage): void;
}

/** Applies one message on an edge; the channel acknowledges it when the promise resolves. */
export type EdgeMessageHandler = (message: ClusterMessage) => Promise<void>;

export interface EdgeMembership {
  readonly edgeId: string;
  /**
   * Resolves once the handler has applied the state that was current when
   * the edge joined, so an edge that waits for it before it listens never
   * responds to a request for a distribution it has not loaded yet.
   */
  readonly caughtUp: Promise<void>;
  /** Leaves the cluster: the edge stops counting as live. */
  leave(): Promise<void>;
}

/** The edge's side of the cluster. */
export interface EdgeChannel {
  /**
   * Joins as `edgeId`. The handler first receives the current state (every
   * distribution's latest snapshot), then each new message in order, one at a
   * time. A message whose handler rejects is delivered again.
   */
  join(edgeId: string, handler: EdgeMessageHandler): Promise<EdgeMembership>;
}
