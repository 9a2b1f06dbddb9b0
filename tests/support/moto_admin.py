"""Administers the moto test bed: creates the users, roles and bucket the tests and the
demo use, switches IAM enforcement on, and runs a few admin operations.

Run with the test bed's Python: .testbed/venv/bin/python tests/support/moto_admin.py
    setup ENDPOINT            -> prints JSON with every identity's keys and ARNs
    enforce ENDPOINT          -> IAM enforcement on (every request signed and allowed)
    op ENDPOINT ADMIN_KEY ADMIN_SECRET NAME [ARG...] -> one admin operation, JSON result
                              (versioning, replication, list, get, deny-role, allow-role,
                               set-trust ROLE STATEMENT_JSON)
"""
import json
import sys
import urllib.request

import boto3
from botocore.config import Config

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "tfstate"


def client(endpoint, service, key="test", secret="test"):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 2}, s3={"addressing_style": "path"}),
    )


def policy(statements):
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def allow(actions, resource="*"):
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


def trust(*principals):
    return policy([
        {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]}
    ])


def setup(endpoint):
    iam = client(endpoint, "iam")
    out = {"endpoint": endpoint, "region": REGION, "account": ACCOUNT, "bucket": BUCKET, "users": {}, "roles": {}}
    user_policies = {
        # Alice may assume every role but has no S3 rights of her own.
        "alice": [allow(["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity", "sts:GetCallerIdentity", "sts:GetSessionToken"])],
        # Bob may only ask who he is.
        "bob": [allow(["sts:GetCallerIdentity"])],
        # Carol is the decoy identity in ~/.aws/credentials.
        "carol": [allow(["sts:GetCallerIdentity"])],
        "admin": [allow(["*"])],
    }
    for name, statements in user_policies.items():
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy(statements))
        k = iam.create_access_key(UserName=name)["AccessKey"]
        out["users"][name] = {
            "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
            "key": k["AccessKeyId"],
            "secret": k["SecretAccessKey"],
        }
    alice = out["users"]["alice"]["arn"]
    admin = out["users"]["admin"]["arn"]
    roles = {
        "deploy": (trust(alice), [allow(["s3:*", "sts:GetCallerIdentity"])]),
        "read": (trust(alice), [allow(["s3:Get*", "s3:List*", "sts:GetCallerIdentity"])]),
        "prod": (trust(alice), [allow(["s3:*", "sts:GetCallerIdentity"])]),
        "network": (trust(alice), [allow(["s3:*", "sts:GetCallerIdentity"])]),
        # Nobody but the admin may assume this one.
        "locked": (trust(admin), [allow(["sts:GetCallerIdentity"])]),
    }
    for name, (trust_doc, statements) in roles.items():
        r = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_doc, MaxSessionDuration=43200)["Role"]
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy(statements))
        out["roles"][name] = r["Arn"]
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=BUCKET + "-replica")
    return out


def enforce(endpoint):
    req = urllib.request.Request(
        endpoint.rstrip("/") + "/moto-api/reset-auth",
        data=b"0",
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    urllib.request.urlopen(req).read()


def op(endpoint, key, secret, name, *args):
    s3 = client(endpoint, "s3", key, secret)
    iam = client(endpoint, "iam", key, secret)
    if name == "versioning":
        s3.put_bucket_versioning(Bucket=args[0], VersioningConfiguration={"Status": args[1]})
        return {}
    if name == "replication":
        s3.put_bucket_replication(Bucket=args[0], ReplicationConfiguration={
            "Role": f"arn:aws:iam::{ACCOUNT}:role/deploy",
            "Rules": [{"ID": "r", "Status": "Enabled", "Prefix": "", "Destination": {"Bucket": f"arn:aws:s3:::{args[0]}-replica"}}],
        })
        return {}
    if name == "list":
        resp = s3.list_objects_v2(Bucket=args[0])
        return {"keys": [o["Key"] for o in resp.get("Contents", [])]}
    if name == "get":
        return {"body": s3.get_object(Bucket=args[0], Key=args[1])["Body"].read().decode()}
    if name == "put":
        # put BUCKET KEY FILE: the file's bytes as a new object (version).
        with open(args[2], "rb") as f:
            s3.put_object(Bucket=args[0], Key=args[1], Body=f.read())
        return {}
    if name == "copy":
        # copy SRC_BUCKET KEY DST_BUCKET: what replication would do (moto does not).
        s3.copy_object(Bucket=args[2], Key=args[1], CopySource={"Bucket": args[0], "Key": args[1]})
        return {}
    if name == "deny-bucket":
        # A bucket policy that denies the deploy role everything (moto 5.2.5 enforces a
        # Deny in a bucket policy, and applies it to every caller).
        s3.put_bucket_policy(Bucket=args[0], Policy=policy([{
            "Effect": "Deny",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/deploy"},
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{args[0]}", f"arn:aws:s3:::{args[0]}/*"],
        }]))
        return {}
    if name == "undeny-bucket":
        s3.delete_bucket_policy(Bucket=args[0])
        return {}
    if name == "deny-role":
        iam.put_role_policy(RoleName=args[0], PolicyName="p", PolicyDocument=policy([allow(["sts:GetCallerIdentity"])]))
        return {}
    if name == "allow-role":
        iam.put_role_policy(RoleName=args[0], PolicyName="p", PolicyDocument=policy([allow(["s3:*", "sts:GetCallerIdentity"])]))
        return {}
    if name == "set-trust":
        # Makes one statement (JSON) the role's whole trust policy. moto 5.2.5 treats a
        # trust statement whose principal does not match the caller as a Deny, so a
        # statement added beside the existing one would lock every caller out; real IAM
        # ORs the statements.
        doc = {"Version": "2012-10-17", "Statement": [json.loads(args[1])]}
        iam.update_assume_role_policy(RoleName=args[0], PolicyDocument=json.dumps(doc))
        return {}
    raise SystemExit(f"unknown op {name}")


def main():
    cmd, endpoint, *rest = sys.argv[1:]
    if cmd == "setup":
        print(json.dumps(setup(endpoint)))
    elif cmd == "enforce":
        enforce(endpoint)
        print("{}")
    elif cmd == "op":
        print(json.dumps(op(endpoint, *rest)))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
