import type { TestContext } from "node:test";
import type { DistributionSnapshot } from "../../src/cluster/types.js";
import { customSnapshot, request, startOrigin, startTestEdge, type EdgeResponse } from "./helpers.js";

export interface SemanticsFixture {
  origin: Awaited<ReturnType<typeof startOrigin>>;
  fixture: Awaited<ReturnType<typeof startTestEdge>>;
  snapshot: DistributionSnapshot;
  get(path: string, headers?: Record<string, string>, method?: string): Promise<EdgeResponse>;
}

/**
 * Starts a counting origin and an edge serving one distribution. `edit`
 * may change the snapshot before it is published.
 */
export async function setupDistribution(
  t: TestContext,
  respond: Parameters<typeof startOrigin>[0],
  options: Partial<Parameters<typeof customSnapshot>[0]> = {},
  edit: (snapshot: DistributionSnapshot) => void = () => {},
  edgeOptions: Parameters<typeof startTestEdge>[0] = {},
): Promise<SemanticsFixture> {
  const origin = await startOrigin(respond);
  t.after(() => origin.close());
  const fixture = await startTestEdge(edgeOptions);
  t.after(() => fixture.close());
  const snapshot = customSnapshot({ originPort: origin.port, ...options });
  edit(snapshot);
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
    request(fixture.edge.httpPort, snapshot.domainName, path, { headers, method });
  return { origin, fixture, snapshot, get };
}
