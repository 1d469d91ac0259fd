"""Prepares the tests' S3 server (moto): a bucket with the given objects, and a user allowed to
read them; then turns authentication on, so every later request must be signed (Signature
Version 4) with that user's keys. Prints {"access_key": ..., "secret_key": ...}.

    python setup.py --endpoint http://127.0.0.1:PORT --bucket B --prefix P --dir DIR
"""

import argparse
import json
import os
import urllib.request

import boto3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--prefix", default="")
    ap.add_argument("--dir", required=True)
    args = ap.parse_args()
    common = dict(endpoint_url=args.endpoint, region_name="us-east-1",
                  aws_access_key_id="setup", aws_secret_access_key="setup")
    iam = boto3.client("iam", **common)
    iam.create_user(UserName="tidemark")
    iam.put_user_policy(UserName="tidemark", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="tidemark")["AccessKey"]
    s3 = boto3.client("s3", **common)
    s3.create_bucket(Bucket=args.bucket)
    for name in sorted(os.listdir(args.dir)):
        with open(os.path.join(args.dir, name), "rb") as f:
            s3.put_object(Bucket=args.bucket, Key=f"{args.prefix}/{name}" if args.prefix else name, Body=f.read())
    # From now on every request is authenticated and authorized.
    urllib.request.urlopen(urllib.request.Request(
        f"{args.endpoint}/moto-api/reset-auth", data=b"0", method="POST",
        headers={"Content-Type": "application/octet-stream"}))
    print(json.dumps({"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}))


if __name__ == "__main__":
    main()
