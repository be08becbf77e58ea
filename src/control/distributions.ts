import type {
  CachePolicyConfig,
  Distribution,
  DistributionConfig,
  DistributionSummary,
  OriginRequestPolicyConfig,
  ResponseHeadersPolicyConfig,
  Tag,
} from "@aws-sdk/client-cloudfront";
import type { DistributionSnapshot } from "../cluster/types.js";
import {
  checkIfMatch,
  newDistributionDomainName,
  newEtag,
  newResourceId,
  markerPage,
  pageSize,
  type ControlContext,
} from "./context.js";
import { canonicalJson, withDistributionDefaults } from "./defaults.js";
import { cloudFrontError, controlErrors } from "./errors.js";
import { behaviorsOf } from "./policies.js";
import type { DistributionRecord, PolicyKind } from "./store.js";
import { validateTags } from "./tags.js";
import { validateDistributionConfig } from "./validation.js";

/** A distribution with the ETag of its current config. */
export interface VersionedDistribution {
  distribution: Distribution;
  etag: string;
}

/** Resolves the policies that cache behaviors name, AWS-managed or stored. */
export interface PolicyLookup {
  cachePolicy(id: string): CachePolicyConfig | undefined;
  originRequestPolicy(id: string): OriginRequestPolicyConfig | undefined;
  responseHeadersPolicy(id: string): ResponseHeadersPolicyConfig | undefined;
}

const POLICY_FIELD_OF_KIND = {
  cache: "CachePolicyId",
  "origin-request": "OriginRequestPolicyId",
  "response-headers": "ResponseHeadersPolicyId",
} as const;

/** Distributions: create, read, update, delete and list, with deploy tracking. */
export class DistributionService {
  constructor(
    private readonly context: ControlContext,
    private readonly policies: PolicyLookup,
  ) {}

  async create(input: DistributionConfig, tags: Tag[] = []): Promise<VersionedDistribution> {
    const { store, log } = this.context;
    const config = withDistributionDefaults(input);
    validateTags(tags);

    const outcome = store.transaction(() => {
      // CallerReference makes creation idempotent: the same reference with the
      // same config returns the existing distribution (CloudFront API
      // reference, CreateDistribution).
      const existing = store.findDistributionByCallerReference(config.CallerReference ?? "");
      if (existing) {
        if (canonicalJson(existing.config) !== canonicalJson(config)) {
          throw cloudFrontError(
            "DistributionAlreadyExists",
            `The caller reference '${config.CallerReference}' was already used for distribution ${existing.id} with a different config.`,
          );
        }
        return { record: existing, created: false };
      }
      validateDistributionConfig(config, this.validationContext(undefined, undefined));

      let id = newResourceId("E");
      while (store.getDistribution(id)) id = newResourceId("E");
      const record: DistributionRecord = {
        id,
        arn: `arn:aws:cloudfront::${this.context.accountId}:distribution/${id}`,
        domainName: newDistributionDomainName(this.context.zone),
        callerReference: config.CallerReference ?? "",
        config,
        etag: newEtag(),
        version: 1,
        lastModifiedMs: Date.now(),
      };
      store.insertDistribution(record);
      for (const tag of tags) store.putTag(record.arn, tag.Key ?? "", tag.Value ?? "");
      return { record, created: true };
    });

    if (outcome.created) {
      log.info({ distributionId: outcome.record.id, version: outcome.record.version }, "distribution created");
      await this.publishSnapshot(outcome.record);
    }
    return { distribution: this.toDistribution(outcome.record), etag: outcome.record.etag };
  }

  get(id: string): VersionedDistribution {
    const record = this.require(id);
    return { distribution: this.toDistribution(record), etag: record.etag };
  }

  /** Returns the config version: 1 at creation, plus one for each update. Edges acknowledge it. */
  configVersion(id: string): number {
    return this.require(id).version;
  }

  getConfig(id: string): { config: DistributionConfig; etag: string } {
    const record = this.require(id);
    return { config: record.config, etag: record.etag };
  }

  async update(id: string, input: DistributionConfig, ifMatch: string | undefined): Promise<VersionedDistribution> {
    const { store, log } = this.context;
    const config = withDistributionDefaults(input);

    // Check and write in one synchronous transaction: of two updates sent
    // with the same ETag, the first to commit changes it and the other fails.
    const record = store.transaction(() => {
      const current = this.require(id);
      checkIfMatch(ifMatch, current.etag);
      if (config.CallerReference !== current.callerReference) {
        throw cloudFrontError(
          "IllegalUpdate",
          `DistributionConfig.CallerReference cannot change; it is '${current.callerReference}' for ${id}.`,
        );
      }
      validateDistributionConfig(config, this.validationContext(id, current.config));
      const updated: DistributionRecord = {
        ...current,
        config,
        etag: newEtag(),
        version: current.version + 1,
        lastModifiedMs: Date.now(),
      };
      store.updateDistribution(updated);
      return updated;
    });

    log.info({ distributionId: id, version: record.version }, "distribution updated");
    await this.publishSnapshot(record);
    return { distribution: this.toDistribution(record), etag: record.etag };
  }

  async delete(id: string, ifMatch: string | undefined): Promise<void> {
    const { store, log, tracker } = this.context;
    const record = store.transaction(() => {
      const current = this.require(id);
      checkIfMatch(ifMatch, current.etag);
      // CloudFront deletes only a distribution that is disabled and whose
      // disabling has been deployed (CloudFront API reference, DeleteDistribution).
      if (current.config.Enabled !== false) {
        throw cloudFrontError("DistributionNotDisabled", `Distribution ${id} is enabled; disable it before deleting it.`);
      }
      if (tracker.distributionStatus(id, current.version) !== "Deployed") {
        throw cloudFrontError(
          "DistributionNotDisabled",
          `Distribution ${id} has not finished deploying its disabled config; wait until its status is Deployed.`,
        );
      }
      const invalidationIds = store.listInvalidations(id, undefined, Number.MAX_SAFE_INTEGER).map((entry) => entry.id);
      tracker.forgetInvalidations(invalidationIds);
      store.deleteDistribution(id);
      store.deleteAllTags(current.arn);
      return current;
    });

    log.info({ distributionId: id }, "distribution deleted");
    await tracker.publish({ type: "distribution.deleted", distributionId: id, version: record.version + 1 });
  }

  list(marker: string | undefined, maxItems: number | undefined) {
    const limit = pageSize(maxItems);
    if (marker && !this.context.store.getDistribution(marker)) {
      throw controlErrors.invalidArgument(`Marker '${marker}' is not a distribution id; pass the NextMarker of the previous page.`);
    }
    const page = this.context.store.listDistributions(marker || undefined, limit + 1);
    return markerPage(page, limit, marker, (record) => this.toSummary(record));
  }

  /**
   * Gives every distribution whose behaviors name a changed policy a new
   * version, so edges apply the policy and the status returns to InProgress
   * until they have. The distribution's ETag stays: its config is unchanged.
   */
  async republishPolicyUsers(kind: PolicyKind, policyId: string): Promise<void> {
    const { store, log } = this.context;
    const field = POLICY_FIELD_OF_KIND[kind];
    const records = store.transaction(() => {
      const bumped: DistributionRecord[] = [];
      for (const record of store.allDistributions()) {
        if (!behaviorsOf(record.config).some((behavior) => behavior[field] === policyId)) continue;
        const updated = { ...record, version: record.version + 1 };
        store.updateDistribution(updated);
        bumped.push(updated);
      }
      return bumped;
    });
    for (const record of records) {
      log.info({ distributionId: record.id, version: record.version, policyId }, "distribution republished for a policy change");
    }
    await Promise.all(records.map((record) => this.publishSnapshot(record)));
  }

  /**
   * Builds the deployed form of a distribution, with the origin access
   * controls its origins name and the policies its behaviors name.
   */
  snapshot(record: DistributionRecord): DistributionSnapshot {
    const originAccessControls: DistributionSnapshot["originAccessControls"] = {};
    for (const origin of record.config.Origins?.Items ?? []) {
      const oacId = origin.OriginAccessControlId;
      if (!oacId) continue;
      const oac = this.context.store.getOriginAccessControl(oacId);
      if (oac) originAccessControls[oacId] = oac.config;
    }
    const cachePolicies: Record<string, CachePolicyConfig> = {};
    const originRequestPolicies: Record<string, OriginRequestPolicyConfig> = {};
    const responseHeadersPolicies: Record<string, ResponseHeadersPolicyConfig> = {};
    for (const behavior of behaviorsOf(record.config)) {
      const cacheId = behavior.CachePolicyId;
      const originRequestId = behavior.OriginRequestPolicyId;
      const responseHeadersId = behavior.ResponseHeadersPolicyId;
      const cachePolicy = cacheId ? this.policies.cachePolicy(cacheId) : undefined;
      const originRequestPolicy = originRequestId ? this.policies.originRequestPolicy(originRequestId) : undefined;
      const responseHeadersPolicy = responseHeadersId ? this.policies.responseHeadersPolicy(responseHeadersId) : undefined;
      if (cacheId && cachePolicy) cachePolicies[cacheId] = cachePolicy;
      if (originRequestId && originRequestPolicy) originRequestPolicies[originRequestId] = originRequestPolicy;
      if (responseHeadersId && responseHeadersPolicy) responseHeadersPolicies[responseHeadersId] = responseHeadersPolicy;
    }
    return {
      id: record.id,
      arn: record.arn,
      domainName: record.domainName,
      version: record.version,
      config: record.config,
      originAccessControls,
      cachePolicies,
      originRequestPolicies,
      responseHeadersPolicies,
    };
  }

  publishSnapshot(record: DistributionRecord): Promise<void> {
    return this.context.tracker.publish({ type: "distribution.updated", snapshot: this.snapshot(record) });
  }

  private require(id: string): DistributionRecord {
    const record = this.context.store.getDistribution(id);
    if (!record) throw controlErrors.noSuchDistribution(id);
    return record;
  }

  private validationContext(distributionId: string | undefined, storedConfig: DistributionConfig | undefined) {
    const { store } = this.context;
    return {
      distributionId,
      storedLogging: storedConfig?.Logging,
      bucketExists: (name: string) => this.context.bucketExists(name),
      originAccessControlExists: (oacId: string) => store.getOriginAccessControl(oacId) !== undefined,
      policyExists: (kind: PolicyKind, policyId: string) => {
        if (kind === "cache") return this.policies.cachePolicy(policyId) !== undefined;
        if (kind === "origin-request") return this.policies.originRequestPolicy(policyId) !== undefined;
        return this.policies.responseHeadersPolicy(policyId) !== undefined;
      },
      aliasOwner: (alias: string) =>
        store
          .allDistributions()
          .find((other) => (other.config.Aliases?.Items ?? []).some((name) => name.toLowerCase() === alias))?.id,
    };
  }

  private status(record: DistributionRecord) {
    return this.context.tracker.distributionStatus(record.id, record.version);
  }

  private inProgressInvalidationCount(id: string): number {
    const { store, tracker } = this.context;
    return store
      .listInvalidations(id, undefined, Number.MAX_SAFE_INTEGER)
      .filter((entry) => tracker.invalidationStatus(entry.id, entry.status) === "InProgress").length;
  }

  toDistribution(record: DistributionRecord): Distribution {
    return {
      Id: record.id,
      ARN: record.arn,
      Status: this.status(record),
      LastModifiedTime: new Date(record.lastModifiedMs),
      InProgressInvalidationBatches: this.inProgressInvalidationCount(record.id),
      DomainName: record.domainName,
      ActiveTrustedSigners: { Enabled: false, Quantity: 0 },
      ActiveTrustedKeyGroups: { Enabled: false, Quantity: 0 },
      DistributionConfig: record.config,
    };
  }

  private toSummary(record: DistributionRecord): DistributionSummary {
    const config = record.config;
    return {
      Id: record.id,
      ARN: record.arn,
      ETag: record.etag,
      Status: this.status(record),
      LastModifiedTime: new Date(record.lastModifiedMs),
      DomainName: record.domainName,
      Aliases: config.Aliases,
      Origins: config.Origins,
      OriginGroups: config.OriginGroups,
      DefaultCacheBehavior: config.DefaultCacheBehavior,
      CacheBehaviors: config.CacheBehaviors,
      CustomErrorResponses: config.CustomErrorResponses,
      Comment: config.Comment,
      PriceClass: config.PriceClass,
      Enabled: config.Enabled,
      ViewerCertificate: config.ViewerCertificate,
      Restrictions: config.Restrictions,
      WebACLId: config.WebACLId,
      HttpVersion: config.HttpVersion,
      IsIPV6Enabled: config.IsIPV6Enabled,
      Staging: config.Staging,
    };
  }
}
