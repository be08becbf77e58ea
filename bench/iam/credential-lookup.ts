// Times IamCredentialStore.lookup for a user's key, the root key and an
// unknown key id. Run: node --import tsx bench/iam/credential-lookup.ts
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StaticCredentialStore } from "../../src/api/auth/credentials.js";
import { silentLogger } from "../../src/common/logger.js";
import { openIam } from "../../src/iam/index.js";

const LOOKUPS = 200_000;
const ACCOUNT_ID = "123456789012";

const dataDir = await mkdtemp(join(tmpdir(), "portico-iam-bench-"));
const iam = await openIam({ dataDir, accountId: ACCOUNT_ID, masterKey: undefined, log: silentLogger() });
try {
  const fixed = new StaticCredentialStore({
    accountId: ACCOUNT_ID,
    root: { accessKeyId: "AKIABENCHROOT0000001", secretAccessKey: "r".repeat(40) },
    service: { accessKeyId: "ASIABENCHSERVICE0001", secretAccessKey: "s".repeat(40) },
    rootGenerated: false,
  });
  const store = iam.credentialStore(fixed);
  iam.store.createUser("bench", "/", [], Date.now());
  const userKey = iam.store.createAccessKey("bench", Date.now());
  const cases = [
    ["user key", userKey.accessKeyId],
    ["root key", "AKIABENCHROOT0000001"],
    ["unknown key", "AKIAUNKNOWN000000000"],
  ] as const;
  for (const [label, accessKeyId] of cases) {
    store.lookup(accessKeyId);
    const startNs = process.hrtime.bigint();
    for (let i = 0; i < LOOKUPS; i++) store.lookup(accessKeyId);
    const perLookupNs = Number(process.hrtime.bigint() - startNs) / LOOKUPS;
    process.stdout.write(`${label}: ${perLookupNs.toFixed(0)} ns a lookup (${LOOKUPS} lookups)\n`);
  }
} finally {
  iam.close();
  await rm(dataDir, { recursive: true, force: true });
}
