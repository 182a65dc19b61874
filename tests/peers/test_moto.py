"""The STS and EC2 happy paths, run unchanged against moto and against the sandbox.

The same client code and the same expectations must hold on both, so nothing about these paths
is proven only against our own fake. Where moto differs (documented in
crates/postern-sandbox/docs/fidelity.md): it checks no MFA code or trust policy, its
GetSessionToken credentials resolve to its default user rather than the caller, and it pages
DescribeInstances by reservation (so the seed below launches one instance per reservation).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import tomllib
import unittest
from pathlib import Path

import boto3
import botocore.config

from peers import ROOT, Moto, Sandbox

POSTERN = Path(os.environ.get("POSTERN_BIN", ROOT / "target/debug/postern"))

TEAMS = ["payments", "search", "data", "platform", "payments", "search", "data", "platform", "payments", "search"]


class Backend:
    """What a happy-path run needs from a backend."""

    endpoint: str
    account: str
    keys: dict[str, str]
    serial: str
    role_arn: str
    payments: set[str]
    every: set[str]

    def code(self) -> str:
        raise NotImplementedError

    def client(self, service: str, credentials: dict[str, str]):
        return boto3.session.Session().client(
            service,
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
            **credentials,
        )


class SandboxBackend(Backend):
    def __init__(self) -> None:
        self.sandbox = Sandbox()
        e = self.sandbox.exports
        self.endpoint = self.sandbox.endpoint
        self.account = "210987654321"
        self.keys = {"aws_access_key_id": e["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": e["AWS_SECRET_ACCESS_KEY"]}
        self.serial = e["POSTERN_SANDBOX_MFA_SERIAL"]
        self.role_arn = e["POSTERN_SANDBOX_ROLE_ARN"]
        scenario = tomllib.loads((ROOT / "crates/postern-sandbox/scenarios/default.toml").read_text())
        fleet = [i for i in scenario["fleet"]["instances"] if i["account"] == self.account and i["region"] == "us-east-1"]
        self.every = {i["id"] for i in fleet}
        self.payments = {i["id"] for i in fleet if i["tags"]["team"] == "payments"}

    def code(self) -> str:
        return self.sandbox.next_code()

    def close(self) -> None:
        self.sandbox.close()


class MotoBackend(Backend):
    def __init__(self) -> None:
        self.moto = Moto()
        self.endpoint = self.moto.endpoint
        bootstrap = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        iam = self.client("iam", bootstrap)
        user = iam.create_user(UserName="demo")["User"]
        self.account = user["Arn"].split(":")[4]
        key = iam.create_access_key(UserName="demo")["AccessKey"]
        self.keys = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        device = iam.create_virtual_mfa_device(VirtualMFADeviceName="demo")["VirtualMFADevice"]
        self.serial = device["SerialNumber"]
        trust = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{self.account}:root"},
                                "Action": "sts:AssumeRole", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}
        role = iam.create_role(RoleName="developer", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        self.role_arn = role["Arn"]
        ec2 = self.client("ec2", bootstrap)
        self.every, self.payments = set(), set()
        for n, team in enumerate(TEAMS):
            out = ec2.run_instances(
                ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                TagSpecifications=[{"ResourceType": "instance", "Tags": [
                    {"Key": "Name", "Value": f"{team}-{n}"}, {"Key": "team", "Value": team}]}],
            )
            instance_id = out["Instances"][0]["InstanceId"]
            self.every.add(instance_id)
            if team == "payments":
                self.payments.add(instance_id)

    def code(self) -> str:
        return "123456"  # moto checks no MFA code

    def close(self) -> None:
        self.moto.close()


class HappyPaths:
    """The shared test body; each subclass supplies a backend."""

    backend: Backend

    def test_sts_identity_session_and_role(self) -> None:
        b = self.backend
        sts = b.client("sts", b.keys)
        me = sts.get_caller_identity()
        self.assertEqual(me["Account"], b.account)
        self.assertTrue(me["Arn"].startswith(f"arn:aws:iam::{b.account}:user/"))
        session = sts.get_session_token(SerialNumber=b.serial, TokenCode=b.code(), DurationSeconds=3600)["Credentials"]
        self.assertTrue(session["AccessKeyId"].startswith("ASIA") or session["AccessKeyId"].startswith("AKIA"))
        role = sts.assume_role(RoleArn=b.role_arn, RoleSessionName="demo", SerialNumber=b.serial, TokenCode=b.code())
        self.assertEqual(role["AssumedRoleUser"]["Arn"], f"arn:aws:sts::{b.account}:assumed-role/developer/demo")
        c = role["Credentials"]
        as_role = b.client("sts", {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                                   "aws_session_token": c["SessionToken"]})
        self.assertEqual(as_role.get_caller_identity()["Arn"], f"arn:aws:sts::{b.account}:assumed-role/developer/demo")

    def test_ec2_filters_and_paging(self) -> None:
        b = self.backend
        sts = b.client("sts", b.keys)
        c = sts.assume_role(RoleArn=b.role_arn, RoleSessionName="demo", SerialNumber=b.serial, TokenCode=b.code())["Credentials"]
        ec2 = b.client("ec2", {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                               "aws_session_token": c["SessionToken"]})
        ids = lambda pages: {i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]}
        paginator = ec2.get_paginator("describe_instances")
        self.assertEqual(ids(paginator.paginate(PaginationConfig={"PageSize": 5})), b.every)
        tagged = paginator.paginate(Filters=[{"Name": "tag:team", "Values": ["payments"]}])
        self.assertEqual(ids(tagged), b.payments)
        wildcard = paginator.paginate(Filters=[{"Name": "tag:team", "Values": ["pay*"]}])
        self.assertEqual(ids(wildcard), b.payments)
        self.assertIn("us-east-1", [r["RegionName"] for r in ec2.describe_regions()["Regions"]])


class OnMoto(HappyPaths, unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.backend = MotoBackend()

    def test_postern_ls_lists_moto_instances(self) -> None:
        """`postern ls` against moto's EC2: every instance once, running, with its tags. moto
        cannot answer DescribeInstanceInformation, so the SSM status is unknown (with a note
        naming the call) and nothing is reachable, but the listing is complete."""
        b = self.backend
        with tempfile.TemporaryDirectory() as home:
            env = {
                "PATH": os.environ.get("PATH", ""),
                "HOME": home,
                "POSTERN_HOME": home,
                "POSTERN_POLICY": "",
                "AWS_ENDPOINT_URL": b.endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1",
                "AWS_CONFIG_FILE": "/nonexistent/postern-peers-config",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/postern-peers-credentials",
            }
            out = subprocess.run([str(POSTERN), "ls", "--json", "--all"], env=env, capture_output=True, text=True, timeout=60)
        listed = json.loads(out.stdout)
        rows = listed["instances"]
        self.assertEqual(sorted(r["id"] for r in rows), sorted(b.every), out.stderr)
        for row in rows:
            self.assertEqual(row["state"], "running")
            self.assertEqual(row["region"], "us-east-1")
            self.assertEqual(row["account"], b.account)
            self.assertEqual(row["identity"], "environment")
            self.assertEqual(row["ssm_status"], "unknown")
            self.assertEqual(row["reason_code"], "ssm_status_unknown")
            self.assertFalse(row["reachable"])
            self.assertEqual(row["name"], row["tags"]["Name"])
        self.assertEqual({r["id"] for r in rows if r["tags"]["team"] == "payments"}, b.payments)
        self.assertTrue(listed["complete"])
        self.assertIn("DescribeInstanceInformation", listed["parts"][0]["note"])

    @classmethod
    def tearDownClass(cls) -> None:
        cls.backend.close()


class OnSandbox(HappyPaths, unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.backend = SandboxBackend()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.backend.close()


if __name__ == "__main__":
    unittest.main()
