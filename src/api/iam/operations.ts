import type { ApiRequest } from "../context.js";
import { ApiError } from "../errors.js";
import { iamErrors } from "../../iam/errors.js";
import {
  parseAccessKeyStatus,
  validateAccessKeyId,
  validatePath,
  validatePathPrefix,
  validateTags,
  validateUserName,
  type Tag,
} from "../../iam/names.js";
import type { AccessKeyRecord, IamStore, UserRecord } from "../../iam/store.js";
import { iamTimestamp, type QueryParameters } from "./query.js";

/** Dependencies of every operation besides its parameters. */
export interface IamOperationContext {
  store: IamStore;
  accountId: string;
  /** The root key, which IAM calls without UserName act on; it is managed outside IAM. */
  rootAccessKeyId: string;
}

export type IamOperation = (
  context: IamOperationContext,
  parameters: QueryParameters,
  request: ApiRequest,
) => Record<string, unknown> | undefined;

function userElement(user: UserRecord, withTags: boolean): Record<string, unknown> {
  const element: Record<string, unknown> = {
    Path: user.path,
    UserName: user.userName,
    UserId: user.userId,
    Arn: user.arn,
    CreateDate: iamTimestamp(user.createdAtMs),
  };
  if (withTags && user.tags.length > 0) element.Tags = { member: user.tags };
  return element;
}

function keyMetadataElement(key: AccessKeyRecord): Record<string, unknown> {
  return {
    UserName: key.userName,
    AccessKeyId: key.accessKeyId,
    Status: key.status,
    CreateDate: iamTimestamp(key.createdAtMs),
  };
}

/** Lists end with IsTruncated and, when truncated, the Marker of the next page. */
function pageElement(isTruncated: boolean, marker: string | undefined): Record<string, unknown> {
  return isTruncated ? { IsTruncated: true, Marker: marker } : { IsTruncated: false };
}

function optionalUserName(parameters: QueryParameters): string | undefined {
  const userName = parameters.optional("UserName");
  if (userName !== undefined) validateUserName(userName);
  return userName;
}

function optionalMarker(parameters: QueryParameters): string | undefined {
  const marker = parameters.optional("Marker");
  if (marker !== undefined && !/^[\u0020-\u00FF]{1,320}$/.test(marker)) {
    throw iamErrors.validation(
      `1 validation error detected: Value '${marker}' at 'marker' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0020-\\u00FF]+`,
    );
  }
  return marker;
}

/**
 * Rejects calls that, without UserName, would act on the root's own keys:
 * Portico's root key comes from PORTICO_ACCESS_KEY_ID or credentials.json.
 */
function rootKeyNotManaged(operation: string): ApiError {
  return iamErrors.validation(
    `${operation} without UserName acts on the root's access key, which Portico takes from PORTICO_ACCESS_KEY_ID or credentials.json; pass UserName to act on a user's key.`,
  );
}

export const createUser: IamOperation = (context, parameters) => {
  const userName = parameters.required("UserName");
  validateUserName(userName);
  const path = parameters.optional("Path") ?? "/";
  validatePath(path);
  if (parameters.optional("PermissionsBoundary") !== undefined) {
    throw new ApiError("NotImplemented", 501, "Permissions boundaries are not supported by this endpoint.");
  }
  const tags = parameters.structureList("Tags", ["Key", "Value"]).map(
    (entry): Tag => ({ Key: entry.Key ?? "", Value: entry.Value ?? "" }),
  );
  validateTags(tags);
  const user = context.store.createUser(userName, path, tags, Date.now());
  return { User: userElement(user, true) };
};

export const getUser: IamOperation = (context, parameters) => {
  const userName = optionalUserName(parameters);
  if (userName === undefined) {
    // Without UserName, GetUser describes the caller, which here is always the root.
    return {
      User: {
        UserId: context.accountId,
        Arn: `arn:aws:iam::${context.accountId}:root`,
        CreateDate: iamTimestamp(context.store.createdAtMs()),
      },
    };
  }
  return { User: userElement(context.store.getUser(userName), true) };
};

export const listUsers: IamOperation = (context, parameters) => {
  const pathPrefix = parameters.optional("PathPrefix") ?? "/";
  validatePathPrefix(pathPrefix);
  const page = context.store.listUsers(pathPrefix, optionalMarker(parameters), parameters.maxItems());
  return {
    Users: { member: page.items.map((user) => userElement(user, false)) },
    ...pageElement(page.nextMarker !== undefined, page.nextMarker),
  };
};

export const deleteUser: IamOperation = (context, parameters) => {
  const userName = parameters.required("UserName");
  validateUserName(userName);
  context.store.deleteUser(userName);
  return undefined;
};

export const createAccessKey: IamOperation = (context, parameters, request) => {
  const userName = optionalUserName(parameters);
  if (userName === undefined) throw rootKeyNotManaged("CreateAccessKey");
  const key = context.store.createAccessKey(userName, Date.now());
  // The secret is in the response body only; the log line names the key id.
  request.log.info({ userName: key.userName, accessKeyId: key.accessKeyId }, "access key created");
  return {
    AccessKey: {
      UserName: key.userName,
      AccessKeyId: key.accessKeyId,
      Status: key.status,
      SecretAccessKey: key.secretAccessKey,
      CreateDate: iamTimestamp(key.createdAtMs),
    },
  };
};

export const listAccessKeys: IamOperation = (context, parameters) => {
  const userName = optionalUserName(parameters);
  const marker = optionalMarker(parameters);
  const maxItems = parameters.maxItems();
  if (userName === undefined) {
    // The caller's own keys: the root has exactly one.
    return {
      AccessKeyMetadata: {
        member: [
          { AccessKeyId: context.rootAccessKeyId, Status: "Active", CreateDate: iamTimestamp(context.store.createdAtMs()) },
        ],
      },
      IsTruncated: false,
    };
  }
  const page = context.store.listAccessKeys(userName, marker, maxItems);
  return {
    AccessKeyMetadata: { member: page.items.map(keyMetadataElement) },
    ...pageElement(page.nextMarker !== undefined, page.nextMarker),
  };
};

function keyTarget(
  context: IamOperationContext,
  parameters: QueryParameters,
  operation: string,
): { accessKeyId: string; userName: string } {
  const accessKeyId = parameters.required("AccessKeyId");
  validateAccessKeyId(accessKeyId);
  const userName = optionalUserName(parameters);
  if (userName === undefined) {
    if (accessKeyId === context.rootAccessKeyId) throw rootKeyNotManaged(operation);
    // IAM resolves a missing UserName to the caller, and the root owns no user keys.
    throw iamErrors.noSuchAccessKey(accessKeyId);
  }
  return { accessKeyId, userName };
}

export const deleteAccessKey: IamOperation = (context, parameters, request) => {
  const target = keyTarget(context, parameters, "DeleteAccessKey");
  const key = context.store.deleteAccessKey(target.accessKeyId, target.userName);
  request.log.info({ userName: key.userName, accessKeyId: key.accessKeyId }, "access key deleted");
  return undefined;
};

export const updateAccessKey: IamOperation = (context, parameters, request) => {
  const target = keyTarget(context, parameters, "UpdateAccessKey");
  const status = parseAccessKeyStatus(parameters.required("Status"));
  const key = context.store.updateAccessKey(target.accessKeyId, target.userName, status);
  request.log.info({ userName: key.userName, accessKeyId: key.accessKeyId, status }, "access key status changed");
  return undefined;
};
