import type {
  OriginAccessControl,
  OriginAccessControlConfig,
  OriginAccessControlList,
} from "@aws-sdk/client-cloudfront";
import { checkIfMatch, markerPage, newEtag, newResourceId, pageSize, type ControlContext } from "./context.js";
import type { DistributionService } from "./distributions.js";
import { cloudFrontError, controlErrors } from "./errors.js";
import type { DistributionRecord, OriginAccessControlRecord } from "./store.js";
import { validateOriginAccessControlConfig } from "./validation.js";

function toOriginAccessControl(record: OriginAccessControlRecord): OriginAccessControl {
  return { Id: record.id, OriginAccessControlConfig: record.config };
}

function normalize(config: OriginAccessControlConfig): OriginAccessControlConfig {
  return { ...config, Description: config.Description ?? "" };
}

/** Origin access controls: how edges sign their requests to S3 origins. */
export class OriginAccessControlService {
  constructor(
    private readonly context: ControlContext,
    private readonly distributions: DistributionService,
  ) {}

  create(input: OriginAccessControlConfig): { originAccessControl: OriginAccessControl; etag: string } {
    const { store, log } = this.context;
    const config = normalize(input);
    validateOriginAccessControlConfig(config);
    const record = store.transaction(() => {
      this.checkNameFree(config.Name ?? "", undefined);
      let id = newResourceId("E");
      while (store.getOriginAccessControl(id)) id = newResourceId("E");
      const created: OriginAccessControlRecord = { id, config, etag: newEtag() };
      store.putOriginAccessControl(created);
      return created;
    });
    log.info({ originAccessControlId: record.id }, "origin access control created");
    return { originAccessControl: toOriginAccessControl(record), etag: record.etag };
  }

  get(id: string): { originAccessControl: OriginAccessControl; etag: string } {
    const record = this.require(id);
    return { originAccessControl: toOriginAccessControl(record), etag: record.etag };
  }

  getConfig(id: string): { config: OriginAccessControlConfig; etag: string } {
    const record = this.require(id);
    return { config: record.config, etag: record.etag };
  }

  /**
   * Replaces an origin access control's config. Distributions whose origins
   * use it get a new snapshot version, so edges sign with the new settings.
   */
  async update(
    id: string,
    input: OriginAccessControlConfig,
    ifMatch: string | undefined,
  ): Promise<{ originAccessControl: OriginAccessControl; etag: string }> {
    const { store, log } = this.context;
    const config = normalize(input);
    const { record, dependents } = store.transaction(() => {
      const current = this.require(id);
      checkIfMatch(ifMatch, current.etag);
      validateOriginAccessControlConfig(config);
      this.checkNameFree(config.Name ?? "", id);
      const updated: OriginAccessControlRecord = { id, config, etag: newEtag() };
      store.putOriginAccessControl(updated);
      const bumped: DistributionRecord[] = [];
      for (const distribution of this.distributionsUsing(id)) {
        const next = { ...distribution, version: distribution.version + 1, lastModifiedMs: Date.now() };
        store.updateDistribution(next);
        bumped.push(next);
      }
      return { record: updated, dependents: bumped };
    });
    log.info({ originAccessControlId: id, distributions: dependents.length }, "origin access control updated");
    await Promise.all(dependents.map((distribution) => this.distributions.publishSnapshot(distribution)));
    return { originAccessControl: toOriginAccessControl(record), etag: record.etag };
  }

  delete(id: string, ifMatch: string | undefined): void {
    const { store, log } = this.context;
    store.transaction(() => {
      const current = this.require(id);
      checkIfMatch(ifMatch, current.etag);
      const users = this.distributionsUsing(id);
      if (users.length > 0) {
        throw cloudFrontError(
          "OriginAccessControlInUse",
          `Origin access control ${id} is used by distribution ${users.map((user) => user.id).join(", ")}; remove it from their origins first.`,
        );
      }
      store.deleteOriginAccessControl(id);
    });
    log.info({ originAccessControlId: id }, "origin access control deleted");
  }

  list(marker: string | undefined, maxItems: number | undefined): OriginAccessControlList {
    const limit = pageSize(maxItems);
    if (marker && !this.context.store.getOriginAccessControl(marker)) {
      throw controlErrors.invalidArgument(
        `Marker '${marker}' is not an origin access control id; pass the NextMarker of the previous page.`,
      );
    }
    const page = this.context.store.listOriginAccessControls(marker || undefined, limit + 1);
    return markerPage(page, limit, marker, (record) => ({
      Id: record.id,
      Name: record.config.Name,
      Description: record.config.Description,
      SigningProtocol: record.config.SigningProtocol,
      SigningBehavior: record.config.SigningBehavior,
      OriginAccessControlOriginType: record.config.OriginAccessControlOriginType,
    }));
  }

  private distributionsUsing(id: string): DistributionRecord[] {
    return this.context.store
      .allDistributions()
      .filter((record) => (record.config.Origins?.Items ?? []).some((origin) => origin.OriginAccessControlId === id));
  }

  private checkNameFree(name: string, selfId: string | undefined): void {
    const owner = this.context.store.findOriginAccessControlIdByName(name);
    if (owner !== undefined && owner !== selfId) {
      throw cloudFrontError(
        "OriginAccessControlAlreadyExists",
        `An origin access control named '${name}' already exists: ${owner}.`,
      );
    }
  }

  private require(id: string): OriginAccessControlRecord {
    const record = this.context.store.getOriginAccessControl(id);
    if (!record) throw controlErrors.noSuchOriginAccessControl(id);
    return record;
  }
}
