import { ApiError } from "../api/errors.js";

/** S3 error codes raised by the bucket store, with the status and message S3 uses. */
export const storeErrors = {
  noSuchBucket: (bucket: string) =>
    new ApiError("NoSuchBucket", 404, "The specified bucket does not exist", { details: { BucketName: bucket } }),
  noSuchKey: (key: string) => new ApiError("NoSuchKey", 404, "The specified key does not exist.", { details: { Key: key } }),
  noSuchUpload: (uploadId: string) =>
    new ApiError(
      "NoSuchUpload",
      404,
      "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
      { details: { UploadId: uploadId } },
    ),
  bucketNotEmpty: (bucket: string) =>
    new ApiError("BucketNotEmpty", 409, "The bucket you tried to delete is not empty", { details: { BucketName: bucket } }),
  bucketAlreadyOwnedByYou: (bucket: string) =>
    new ApiError(
      "BucketAlreadyOwnedByYou",
      409,
      "Your previous request to create the named bucket succeeded and you already own it.",
      { details: { BucketName: bucket } },
    ),
  invalidBucketName: (bucket: string, reason: string) =>
    new ApiError("InvalidBucketName", 400, `The specified bucket is not valid: ${reason}`, {
      details: { BucketName: bucket },
    }),
  preconditionFailed: (condition: string) =>
    new ApiError("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold", {
      details: { Condition: condition },
    }),
  noSuchBucketPolicy: (bucket: string) =>
    new ApiError("NoSuchBucketPolicy", 404, "The bucket policy does not exist", { details: { BucketName: bucket } }),
};
