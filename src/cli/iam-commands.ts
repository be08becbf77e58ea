import { Command, Option } from "commander";
import { silentLogger } from "../common/logger.js";
import { DEFAULTS, resolveDataDir } from "../config/options.js";
import { openIam, readAccountId, type Iam } from "../iam/index.js";
import { validateAccessKeyId, validatePath, validateUserName } from "../iam/names.js";

interface CommonFlags {
  dataDir: string;
  json: boolean;
}

/** The largest page read at once while listing; the listing continues past it. */
const LIST_PAGE_SIZE = 1000;

function commonOptions(command: Command): Command {
  return command
    .addOption(
      new Option("--data-dir <path>", "folder that holds all state; the users are in <data-dir>/iam/iam.db")
        .env("PORTICO_DATA_DIR")
        .default(DEFAULTS.dataDir),
    )
    .addOption(new Option("--json", "print JSON instead of text").default(false));
}

const MASTER_KEY_HELP =
  "\nThe command works on the data folder directly, with Portico stopped or running; a running\n" +
  "Portico sees new, deleted and deactivated keys on its next request. Secret keys are stored\n" +
  "encrypted with AES-256-GCM under <data-dir>/iam/master.key (mode 0600), or under\n" +
  "PORTICO_MASTER_KEY (32 bytes as 64 hex digits or base64) when it is set.\n";

async function withIam<T>(flags: CommonFlags, action: (iam: Iam) => T): Promise<T> {
  const dataDir = resolveDataDir(flags.dataDir);
  const accountId = await readAccountId(dataDir);
  const iam = await openIam({ dataDir, accountId, masterKey: process.env.PORTICO_MASTER_KEY, log: silentLogger() });
  try {
    return action(iam);
  } finally {
    iam.close();
  }
}

function print(flags: CommonFlags, value: unknown, text: string): void {
  process.stdout.write(flags.json ? JSON.stringify(value, null, 2) + "\n" : text);
}

function table(rows: string[][]): string {
  if (rows.length === 0) return "";
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd()).join("\n") + "\n";
}

function registerUsers(program: Command): void {
  const users = program
    .command("users")
    .description("Create, list and delete IAM users, the principals arn:aws:iam::<account>:user/<name>.");

  commonOptions(users.command("create").argument("<name>", "user name: 1 to 64 of A-Z a-z 0-9 + = , . @ _ -"))
    .description("Create a user. It has no access key until 'portico keys create' makes one.")
    .addOption(new Option("--path <path>", "IAM path of the user, such as /team/; it becomes part of the ARN").default("/"))
    .addHelpText("after", MASTER_KEY_HELP)
    .action(async (name: string, flags: CommonFlags & { path: string }) => {
      validateUserName(name);
      validatePath(flags.path);
      const user = await withIam(flags, (iam) => iam.store.createUser(name, flags.path, [], Date.now()));
      print(flags, user, `Created user ${user.userName}\n  UserId: ${user.userId}\n  Arn:    ${user.arn}\n`);
    });

  commonOptions(users.command("list"))
    .description("List every user, by name.")
    .addHelpText("after", MASTER_KEY_HELP)
    .action(async (flags: CommonFlags) => {
      const list = await withIam(flags, (iam) => {
        const all = [];
        let marker: string | undefined;
        do {
          const page = iam.store.listUsers("/", marker, LIST_PAGE_SIZE);
          all.push(...page.items);
          marker = page.nextMarker;
        } while (marker !== undefined);
        return all;
      });
      const rows = list.map((user) => [user.userName, user.userId, user.arn, new Date(user.createdAtMs).toISOString()]);
      print(flags, list, list.length === 0 ? "No users.\n" : table([["NAME", "USER ID", "ARN", "CREATED"], ...rows]));
    });

  commonOptions(users.command("delete").argument("<name>", "user name"))
    .description("Delete a user. Delete its access keys first.")
    .addHelpText("after", MASTER_KEY_HELP)
    .action(async (name: string, flags: CommonFlags) => {
      validateUserName(name);
      await withIam(flags, (iam) => iam.store.deleteUser(name));
      print(flags, { deleted: name }, `Deleted user ${name}\n`);
    });
}

function registerKeys(program: Command): void {
  const keys = program.command("keys").description("Create, list and delete the access keys of IAM users.");

  commonOptions(keys.command("create").argument("<user>", "user that the key signs for"))
    .description("Create an access key for a user and print its secret. The secret is shown only this once.")
    .addHelpText("after", MASTER_KEY_HELP)
    .action(async (userName: string, flags: CommonFlags) => {
      validateUserName(userName);
      const key = await withIam(flags, (iam) => iam.store.createAccessKey(userName, Date.now()));
      print(
        flags,
        { UserName: key.userName, AccessKeyId: key.accessKeyId, SecretAccessKey: key.secretAccessKey, Status: key.status },
        `Created an access key for ${key.userName}. The secret is shown only this once:\n` +
          `  export AWS_ACCESS_KEY_ID=${key.accessKeyId}\n` +
          `  export AWS_SECRET_ACCESS_KEY=${key.secretAccessKey}\n`,
      );
    });

  commonOptions(keys.command("list").argument("[user]", "list only this user's keys; all users' keys when omitted"))
    .description("List access keys with their status; secrets are never shown again.")
    .addHelpText("after", MASTER_KEY_HELP)
    .action(async (userName: string | undefined, flags: CommonFlags) => {
      if (userName !== undefined) validateUserName(userName);
      const list = await withIam(flags, (iam) => {
        const all = [];
        let marker: string | undefined;
        do {
          const page = iam.store.listAccessKeys(userName, marker, LIST_PAGE_SIZE);
          all.push(...page.items);
          marker = page.nextMarker;
        } while (marker !== undefined);
        return all;
      });
      const rows = list.map((key) => [key.accessKeyId, key.userName, key.status, new Date(key.createdAtMs).toISOString()]);
      print(flags, list, list.length === 0 ? "No access keys.\n" : table([["ACCESS KEY ID", "USER", "STATUS", "CREATED"], ...rows]));
    });

  commonOptions(keys.command("delete").argument("<access-key-id>", "the key to delete"))
    .description("Delete an access key. Requests signed with it fail with InvalidAccessKeyId from then on.")
    .addHelpText("after", MASTER_KEY_HELP)
    .action(async (accessKeyId: string, flags: CommonFlags) => {
      validateAccessKeyId(accessKeyId);
      const key = await withIam(flags, (iam) => iam.store.deleteAccessKey(accessKeyId, undefined));
      print(flags, { deleted: key.accessKeyId, userName: key.userName }, `Deleted access key ${key.accessKeyId} of ${key.userName}\n`);
    });
}

/** Adds `portico users ...` and `portico keys ...` to the command line. */
export function registerIamCommands(program: Command): void {
  registerUsers(program);
  registerKeys(program);
}
