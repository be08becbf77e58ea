import { compileInvalidationPaths } from "../cache/invalidation.js";
import type { ClusterMessage, EdgeMessageHandler } from "../cluster/types.js";
import type { OriginContext } from "../origin/index.js";
import { bumpPurgeEpoch, rememberPurge, type EdgeContext } from "./context.js";
import { compileDistribution } from "./routing.js";

/**
 * Applies cluster messages to an edge. The handler's promise is the
 * acknowledgement, so it resolves only once the change is in effect: routes
 * replaced, or matching cache entries purged.
 */
export function createClusterHandler(context: EdgeContext, origins: OriginContext): EdgeMessageHandler {
  return async (message: ClusterMessage): Promise<void> => {
    switch (message.type) {
      case "distribution.updated": {
        const snapshot = message.snapshot;
        const current = context.routing.get(snapshot.id);
        // A replayed older snapshot must not undo a newer one.
        if (current !== undefined && current.version > snapshot.version) {
          context.log.info(
            { distributionId: snapshot.id, version: snapshot.version, appliedVersion: current.version },
            "skipped an older distribution snapshot",
          );
          return;
        }
        let compiled: ReturnType<typeof compileDistribution>;
        try {
          compiled = compileDistribution(snapshot, origins);
        } catch (error) {
          // Delivering the snapshot again would fail the same way and hold back every later
          // message, so the edge keeps the previous routes and logs the failure.
          context.log.error(
            { err: error, distributionId: snapshot.id, version: snapshot.version },
            "failed to compile a distribution snapshot; the edge keeps its previous routes",
          );
          return;
        }
        context.routing.apply(compiled);
        context.log.info({ distributionId: snapshot.id, version: snapshot.version }, "applied distribution");
        return;
      }
      case "distribution.deleted": {
        context.routing.remove(message.distributionId);
        bumpPurgeEpoch(context, message.distributionId);
        rememberPurge(context, message.distributionId, () => true);
        const purged = context.memory.purgeDistribution(message.distributionId);
        // The acknowledgement waits for the files to be gone.
        const purgedOnDisk = (await context.disk?.purgeDistribution(message.distributionId)) ?? 0;
        context.log.info({ distributionId: message.distributionId, purged, purgedOnDisk }, "removed distribution");
        return;
      }
      case "invalidation.created": {
        bumpPurgeEpoch(context, message.distributionId);
        const matches = compileInvalidationPaths(message.paths);
        rememberPurge(context, message.distributionId, matches);
        const purged = context.memory.purge(message.distributionId, matches);
        const purgedOnDisk = (await context.disk?.purge(message.distributionId, matches)) ?? 0;
        context.log.info(
          { distributionId: message.distributionId, invalidationId: message.invalidationId, purged, purgedOnDisk },
          "invalidation purged",
        );
        return;
      }
    }
  };
}
