import type {
  CachePolicyConfig,
  OriginRequestPolicyConfig,
  ResponseHeadersPolicyConfig,
} from "@aws-sdk/client-cloudfront";
import type { ControlChannel } from "../cluster/types.js";
import type { Logger } from "../common/logger.js";
import type { ControlContext } from "./context.js";
import { DeploymentTracker } from "./deployment.js";
import { DistributionService } from "./distributions.js";
import { InvalidationService } from "./invalidations.js";
import { OriginAccessControlService } from "./origin-access-controls.js";
import {
  CACHE_POLICY_KIND,
  ORIGIN_REQUEST_POLICY_KIND,
  PolicyService,
  RESPONSE_HEADERS_POLICY_KIND,
} from "./policies.js";
import { ControlStore } from "./store.js";
import { TagService } from "./tags.js";

export interface ControlPlaneOptions {
  dataDir: string;
  accountId: string;
  zone: string;
  bus: ControlChannel;
  /** Returns whether the bucket store has a bucket of this name, for Logging.Bucket. */
  bucketExists(name: string): boolean;
  log: Logger;
}

/**
 * The control plane: stored distributions, origin access controls,
 * cache, origin request and response headers policies, invalidations and
 * tags, published to the edges through the ControlChannel.
 */
export class ControlPlane {
  readonly distributions: DistributionService;
  readonly originAccessControls: OriginAccessControlService;
  readonly invalidations: InvalidationService;
  readonly tags: TagService;
  readonly cachePolicies: PolicyService<CachePolicyConfig>;
  readonly originRequestPolicies: PolicyService<OriginRequestPolicyConfig>;
  readonly responseHeadersPolicies: PolicyService<ResponseHeadersPolicyConfig>;
  private readonly context: ControlContext;

  constructor(options: ControlPlaneOptions) {
    const store = new ControlStore(options.dataDir);
    const log = options.log;
    const tracker = new DeploymentTracker(options.bus, store, log);
    this.context = { store, tracker, log, accountId: options.accountId, zone: options.zone, bucketExists: options.bucketExists };
    this.distributions = new DistributionService(this.context, {
      cachePolicy: (id) => this.cachePolicies.lookup(id),
      originRequestPolicy: (id) => this.originRequestPolicies.lookup(id),
      responseHeadersPolicy: (id) => this.responseHeadersPolicies.lookup(id),
    });
    const republish = this.distributions.republishPolicyUsers.bind(this.distributions);
    this.cachePolicies = new PolicyService(this.context, CACHE_POLICY_KIND, republish);
    this.originRequestPolicies = new PolicyService(this.context, ORIGIN_REQUEST_POLICY_KIND, republish);
    this.responseHeadersPolicies = new PolicyService(this.context, RESPONSE_HEADERS_POLICY_KIND, republish);
    this.originAccessControls = new OriginAccessControlService(this.context, this.distributions);
    this.invalidations = new InvalidationService(this.context);
    this.tags = new TagService(this.context);
  }

  /**
   * Starts tracking acknowledgements and republishes every stored
   * distribution, so edges that join after a restart receive its config.
   */
  async start(): Promise<void> {
    this.context.tracker.start();
    const records = this.context.store.allDistributions();
    await Promise.all(records.map((record) => this.distributions.publishSnapshot(record)));
    this.context.log.info({ distributions: records.length }, "control plane started");
  }

  async close(): Promise<void> {
    this.context.tracker.stop();
    await this.context.tracker.flush();
    this.context.store.close();
  }
}

export type { DistributionStatus } from "./deployment.js";
export { controlErrors, cloudFrontError } from "./errors.js";
