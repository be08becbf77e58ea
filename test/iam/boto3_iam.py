"""Drives Portico's IAM API with boto3 and prints what it saw as JSON.

Usage: boto3_iam.py ENDPOINT ACCESS_KEY SECRET_KEY USER_NAME
"""
import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def error_of(call):
    try:
        call()
    except ClientError as error:
        return {"code": error.response["Error"]["Code"], "status": error.response["ResponseMetadata"]["HTTPStatusCode"]}
    return None


def main() -> None:
    endpoint, access_key, secret_key, user_name = sys.argv[1:5]
    client = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"max_attempts": 1}),
    )
    out = {"boto3": boto3.__version__, "protocol": client.meta.service_model.protocol}
    created = client.create_user(UserName=user_name, Tags=[{"Key": "owner", "Value": "ops team"}])["User"]
    out["created"] = {"UserName": created["UserName"], "UserId": created["UserId"], "Arn": created["Arn"], "Tags": created.get("Tags")}
    out["got"] = client.get_user(UserName=user_name)["User"]["UserId"]
    out["listed"] = [user["UserName"] for user in client.list_users()["Users"]]
    key = client.create_access_key(UserName=user_name)["AccessKey"]
    out["key"] = {"AccessKeyId": key["AccessKeyId"], "SecretLength": len(key["SecretAccessKey"]), "Status": key["Status"]}
    client.update_access_key(UserName=user_name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    out["keys"] = [
        {"AccessKeyId": entry["AccessKeyId"], "Status": entry["Status"]}
        for entry in client.list_access_keys(UserName=user_name)["AccessKeyMetadata"]
    ]
    out["deleteConflict"] = error_of(lambda: client.delete_user(UserName=user_name))
    client.delete_access_key(UserName=user_name, AccessKeyId=key["AccessKeyId"])
    client.delete_user(UserName=user_name)
    out["missing"] = error_of(lambda: client.get_user(UserName=user_name))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
