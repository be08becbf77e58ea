import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileDurably } from "../../common/durable.js";
import { randomString, randomUpperAlphanumeric } from "../../common/ids.js";
import {
  CLOUDFRONT_SERVICE_PRINCIPAL,
  type CredentialStore,
  type SigningKey,
} from "./principal.js";

/** Key pairs and the account id, kept in `credentials.json` in the data folder with mode 0600. */
export interface StoredCredentials {
  accountId: string;
  /** Present only when the root key was generated rather than given by the environment. */
  root?: { accessKeyId: string; secretAccessKey: string };
  /** The key that edges sign origin requests with, as the CloudFront service principal. */
  service: { accessKeyId: string; secretAccessKey: string };
}

export interface RootCredentialsSource {
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
}

export interface LoadedCredentials {
  accountId: string;
  root: { accessKeyId: string; secretAccessKey: string };
  service: { accessKeyId: string; secretAccessKey: string };
  /** True when the root key was generated during this call and has not been shown before. */
  rootGenerated: boolean;
}

const SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function newKeyPair(prefix: string): { accessKeyId: string; secretAccessKey: string } {
  return {
    accessKeyId: prefix + randomUpperAlphanumeric(16),
    secretAccessKey: randomString(SECRET_ALPHABET, 40),
  };
}

/**
 * Loads the credentials from the data folder, creating the file on first
 * start. Root keys from the environment win over stored ones and are never
 * written to disk.
 */
export async function loadCredentials(
  dataDir: string,
  fromEnvironment: RootCredentialsSource,
): Promise<LoadedCredentials> {
  const path = join(dataDir, "credentials.json");
  let stored: StoredCredentials | undefined;
  try {
    stored = JSON.parse(await readFile(path, "utf8")) as StoredCredentials;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new Error(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  const envGiven = fromEnvironment.accessKeyId !== undefined && fromEnvironment.secretAccessKey !== undefined;
  if ((fromEnvironment.accessKeyId === undefined) !== (fromEnvironment.secretAccessKey === undefined)) {
    throw new Error(
      "PORTICO_ACCESS_KEY_ID and PORTICO_SECRET_ACCESS_KEY must be set together, or both left unset",
    );
  }

  let rootGenerated = false;
  let changed = false;
  if (!stored) {
    stored = {
      accountId: String(100000000000 + (randomBytes(6).readUIntBE(0, 6) % 900000000000)),
      service: newKeyPair("ASIA"),
    };
    changed = true;
  }
  if (!envGiven && !stored.root) {
    stored.root = newKeyPair("AKIA");
    rootGenerated = true;
    changed = true;
  }
  if (changed) await writeFileDurably(path, JSON.stringify(stored, null, 2) + "\n", 0o600);

  const root = envGiven
    ? { accessKeyId: fromEnvironment.accessKeyId!, secretAccessKey: fromEnvironment.secretAccessKey! }
    : stored.root!;
  return { accountId: stored.accountId, root, service: stored.service, rootGenerated };
}

/** A credential store holding the root key and the CloudFront service key. */
export class StaticCredentialStore implements CredentialStore {
  private readonly keys = new Map<string, SigningKey>();

  constructor(credentials: LoadedCredentials) {
    this.keys.set(credentials.root.accessKeyId, {
      ...credentials.root,
      principal: {
        type: "root",
        accessKeyId: credentials.root.accessKeyId,
        accountId: credentials.accountId,
        arn: `arn:aws:iam::${credentials.accountId}:root`,
      },
    });
    this.keys.set(credentials.service.accessKeyId, {
      ...credentials.service,
      principal: {
        type: "service",
        service: CLOUDFRONT_SERVICE_PRINCIPAL,
        accessKeyId: credentials.service.accessKeyId,
        sourceArn: undefined,
      },
    });
  }

  lookup(accessKeyId: string): SigningKey | undefined {
    return this.keys.get(accessKeyId);
  }
}
