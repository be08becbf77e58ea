import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../common/logger.js";
import type { CredentialStore } from "../api/auth/principal.js";
import { IamCredentialStore } from "./credential-store.js";
import { loadMasterKey, SecretSealer, type MasterKeySource } from "./secrets.js";
import { IamStore } from "./store.js";

export { IamStore } from "./store.js";
export type { AccessKeyRecord, AccessKeyWithSecret, Page, UserRecord } from "./store.js";
export { IamCredentialStore } from "./credential-store.js";

/** Users and access keys of one data folder. */
export interface Iam {
  store: IamStore;
  masterKeySource: MasterKeySource;
  /** A credential store that tries `fixed` (root and service keys) first, then the users' keys. */
  credentialStore(fixed: CredentialStore): CredentialStore;
  close(): void;
}

export interface OpenIamOptions {
  dataDir: string;
  accountId: string;
  /** PORTICO_MASTER_KEY, when set: 32 bytes as hex or base64. */
  masterKey: string | undefined;
  log: Logger;
}

/**
 * Opens `<dataDir>/iam/`: loads or creates the master key (`master.key`,
 * mode 0600) and opens `iam.db`, checking that the key opens it.
 */
export async function openIam(options: OpenIamOptions): Promise<Iam> {
  const iamDir = join(options.dataDir, "iam");
  const masterKey = await loadMasterKey(iamDir, options.masterKey);
  const store = IamStore.open(iamDir, options.accountId, new SecretSealer(masterKey.key));
  if (masterKey.source === "generated") {
    options.log.info({ path: join(iamDir, "master.key") }, "generated the IAM master key");
  }
  return {
    store,
    masterKeySource: masterKey.source,
    credentialStore: (fixed) => new IamCredentialStore(fixed, store, options.accountId, options.log),
    close: () => store.close(),
  };
}

/**
 * Reads the account id from `<dataDir>/credentials.json`, for tools that act
 * on a data folder without starting Portico.
 */
export async function readAccountId(dataDir: string): Promise<string> {
  const path = join(dataDir, "credentials.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error(`${path} not found: run 'portico up --data-dir ${dataDir}' once to create the account`, {
        cause: error,
      });
    }
    throw error;
  }
  const accountId = (JSON.parse(text) as { accountId?: unknown }).accountId;
  if (typeof accountId !== "string" || !/^\d{12}$/.test(accountId)) {
    throw new Error(`${path} has no valid 12-digit accountId`);
  }
  return accountId;
}
