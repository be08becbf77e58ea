import { ApiError } from "../api/errors.js";

/**
 * IAM error codes with the HTTP status each one has in the IAM service model
 * (the `awsQueryError` trait of NoSuchEntityException and the others).
 */
export const iamErrors = {
  noSuchUser: (userName: string) =>
    new ApiError("NoSuchEntity", 404, `The user with name ${userName} cannot be found.`),
  noSuchAccessKey: (accessKeyId: string) =>
    new ApiError("NoSuchEntity", 404, `The Access Key with id ${accessKeyId} cannot be found.`),
  userAlreadyExists: (userName: string) =>
    new ApiError("EntityAlreadyExists", 409, `User with name ${userName} already exists.`),
  accessKeyLimit: (userName: string, limit: number) =>
    new ApiError(
      "LimitExceeded",
      409,
      `Cannot exceed quota for AccessKeysPerUser: ${limit}. Delete an access key of user ${userName} first.`,
    ),
  userHasAccessKeys: (userName: string) =>
    new ApiError(
      "DeleteConflict",
      409,
      `Cannot delete entity, must delete access keys first. User ${userName} still has access keys.`,
    ),
  validation: (message: string) => new ApiError("ValidationError", 400, message),
};
