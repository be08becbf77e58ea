import type { ServerResponse } from "node:http";
import type { ApiRequest, ProtocolService } from "../context.js";
import { ApiError } from "../errors.js";
import type { IamStore } from "../../iam/store.js";
import * as operations from "./operations.js";
import { IAM_API_VERSION, QueryParameters, sendError, sendResult } from "./query.js";

/** Built operations, by their IAM action name. */
const OPERATIONS: Record<string, operations.IamOperation> = {
  CreateUser: operations.createUser,
  GetUser: operations.getUser,
  ListUsers: operations.listUsers,
  DeleteUser: operations.deleteUser,
  CreateAccessKey: operations.createAccessKey,
  ListAccessKeys: operations.listAccessKeys,
  DeleteAccessKey: operations.deleteAccessKey,
  UpdateAccessKey: operations.updateAccessKey,
};

/** IAM operations that this endpoint recognises but does not build; they return NotImplemented. */
const NOT_IMPLEMENTED = new Set([
  "UpdateUser",
  "TagUser",
  "UntagUser",
  "ListUserTags",
  "GetAccessKeyLastUsed",
  "PutUserPolicy",
  "GetUserPolicy",
  "DeleteUserPolicy",
  "ListUserPolicies",
  "AttachUserPolicy",
  "DetachUserPolicy",
  "ListAttachedUserPolicies",
  "PutUserPermissionsBoundary",
  "DeleteUserPermissionsBoundary",
  "CreateLoginProfile",
  "CreateGroup",
  "AddUserToGroup",
  "ListGroups",
  "ListGroupsForUser",
  "CreateRole",
  "ListRoles",
  "CreatePolicy",
  "ListPolicies",
  "GetAccountSummary",
]);

export interface IamServiceOptions {
  store: IamStore;
  accountId: string;
  rootAccessKeyId: string;
}

/**
 * The IAM Query protocol (`POST /` with `Action=...&Version=2010-05-08`,
 * credential scope service `iam`). Only the root may call it: Portico has no
 * identity-based policies that could grant IAM actions to a user.
 */
class IamService implements ProtocolService {
  constructor(private readonly context: operations.IamOperationContext) {}

  async handle(request: ApiRequest, response: ServerResponse): Promise<void> {
    const parameters = new QueryParameters(request);
    const action = parameters.optional("Action");
    if (action === undefined || action === "") {
      throw new ApiError("MissingAction", 400, "The request must contain the parameter Action.");
    }
    request.log = request.log.child({ operation: action });
    const version = parameters.optional("Version");
    const operation = OPERATIONS[action];
    if (version !== IAM_API_VERSION || (operation === undefined && !NOT_IMPLEMENTED.has(action))) {
      throw new ApiError("InvalidAction", 400, `Could not find operation ${action} for version ${version ?? "NO_VERSION_SPECIFIED"}.`);
    }

    const principal = request.principal;
    if (principal.type !== "root") {
      let caller = "anonymous";
      if (principal.type === "user") caller = principal.arn;
      if (principal.type === "service") caller = principal.service;
      throw new ApiError(
        "AccessDenied",
        403,
        `User: ${caller} is not authorized to perform: iam:${action} on resource: arn:aws:iam::${this.context.accountId}:user/ because only the account root may call IAM on this endpoint`,
      );
    }
    if (operation === undefined) {
      throw new ApiError("NotImplemented", 501, `The operation ${action} is not implemented by this endpoint.`);
    }
    sendResult(response, request, action, operation(this.context, parameters, request));
  }

  renderError(error: ApiError, request: ApiRequest, response: ServerResponse): void {
    // IAM reports an unknown access key as InvalidClientTokenId, where S3 uses InvalidAccessKeyId.
    const rendered =
      error.code === "InvalidAccessKeyId"
        ? new ApiError("InvalidClientTokenId", 403, "The security token included in the request is invalid.")
        : error;
    sendError(response, request, rendered);
  }
}

/** Returns the IAM protocol service over `store`. */
export function createIamService(options: IamServiceOptions): ProtocolService {
  return new IamService({ store: options.store, accountId: options.accountId, rootAccessKeyId: options.rootAccessKeyId });
}
