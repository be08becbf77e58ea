import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileDurably } from "../common/durable.js";

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Version byte in front of every sealed secret, so the format can change later. */
const FORMAT_VERSION = 1;

/** The origin of the master key: the environment, an existing file, or a file created now. */
export type MasterKeySource = "environment" | "file" | "generated";

export interface MasterKey {
  key: Buffer;
  source: MasterKeySource;
}

/**
 * Parses a master key given as 64 hex digits or as base64 of 32 bytes, the
 * forms `openssl rand -hex 32` and `openssl rand -base64 32` print.
 */
export function parseMasterKey(text: string, origin: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, "hex") : Buffer.from(trimmed, "base64");
  if (key.length !== KEY_BYTES) {
    throw new Error(
      `invalid master key in ${origin}: expected 32 bytes as 64 hex digits or base64 (openssl rand -base64 32)`,
    );
  }
  return key;
}

/**
 * Loads the key that encrypts secret access keys. PORTICO_MASTER_KEY wins and
 * is never written to disk; otherwise `<iamDir>/master.key` is read, or
 * created with mode 0600 on first start.
 */
export async function loadMasterKey(iamDir: string, fromEnvironment: string | undefined): Promise<MasterKey> {
  if (fromEnvironment !== undefined && fromEnvironment !== "") {
    return { key: parseMasterKey(fromEnvironment, "PORTICO_MASTER_KEY"), source: "environment" };
  }
  const path = join(iamDir, "master.key");
  try {
    const info = await stat(path);
    // The key must stay readable by its owner alone, even if someone widened it.
    if ((info.mode & 0o077) !== 0) await chmod(path, 0o600);
    return { key: parseMasterKey(await readFile(path, "utf8"), path), source: "file" };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(iamDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(KEY_BYTES);
  await writeFileDurably(path, key.toString("base64") + "\n", 0o600);
  // NOTE: two processes starting on a fresh data folder at once could each
  // write a key. The database's key check then rejects the loser at open.
  return { key: parseMasterKey(await readFile(path, "utf8"), path), source: "generated" };
}

/**
 * Encrypts and decrypts secrets with AES-256-GCM. The associated data binds
 * each ciphertext to its access key id, so a sealed secret copied onto
 * another key's row fails to open.
 */
export class SecretSealer {
  constructor(private readonly key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error("the master key must be 32 bytes");
  }

  /** Returns version byte, nonce, ciphertext and tag in one buffer. */
  seal(plaintext: string, associatedData: string): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.key, nonce);
    cipher.setAAD(Buffer.from(associatedData, "utf8"));
    const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return Buffer.concat([Buffer.from([FORMAT_VERSION]), nonce, ciphertext, cipher.getAuthTag()]);
  }

  /** Decrypts a sealed secret; throws when the key, the data or the associated data differ. */
  open(sealed: Buffer, associatedData: string): string {
    if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] !== FORMAT_VERSION) {
      throw new Error("sealed secret has an unknown format");
    }
    const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    const ciphertext = sealed.subarray(1 + NONCE_BYTES, sealed.length - TAG_BYTES);
    const decipher = createDecipheriv("aes-256-gcm", this.key, nonce);
    decipher.setAAD(Buffer.from(associatedData, "utf8"));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString("utf8");
  }
}
