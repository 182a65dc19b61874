"""The AWS CLI v1 against the sandbox: every operation the CLI can complete.

(`aws ssm start-session` needs AWS's session-manager-plugin, which cannot be installed here;
StartSession and ResumeSession are driven through boto3 in test_boto3.py.)
"""

from __future__ import annotations

import json
import unittest

import boto3

from peers import DEMO_ACCOUNT, PROD_ACCOUNT, Sandbox, aws


class AwsCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.sandbox = Sandbox()
        cls.env = cls.sandbox.cli_env()
        cls.demo_role = cls.sandbox.exports["POSTERN_SANDBOX_ROLE_ARN"]
        cls.serial = cls.sandbox.exports["POSTERN_SANDBOX_MFA_SERIAL"]
        # The sandbox's LookupEvents throttle has its own test; these calls need not wait.
        cls.sandbox.admin("/_sandbox/throttle", {"lookup_events": False})

    @classmethod
    def tearDownClass(cls) -> None:
        cls.sandbox.close()

    def ok(self, env: dict[str, str], *args: str):
        result = aws(env, *args)
        self.assertEqual(result.code, 0, f"aws {' '.join(args)}: {result.stderr}")
        return result.json() if result.stdout.strip() else None

    def fails(self, env: dict[str, str], code: str, *args: str) -> str:
        result = aws(env, *args)
        self.assertNotEqual(result.code, 0, f"aws {' '.join(args)} should fail")
        self.assertEqual(result.error_code(), code, result.stderr)
        return result.stderr

    def mfa_session_env(self) -> dict[str, str]:
        out = self.ok(
            self.env, "sts", "get-session-token", "--serial-number", self.serial, "--token-code", self.sandbox.next_code()
        )
        c = out["Credentials"]
        return self.sandbox.cli_env(
            AWS_ACCESS_KEY_ID=c["AccessKeyId"], AWS_SECRET_ACCESS_KEY=c["SecretAccessKey"], AWS_SESSION_TOKEN=c["SessionToken"]
        )

    def role_env(self, role_arn: str, session_name: str = "demo") -> dict[str, str]:
        out = self.ok(self.mfa_session_env(), "sts", "assume-role", "--role-arn", role_arn, "--role-session-name", session_name)
        c = out["Credentials"]
        return self.sandbox.cli_env(
            AWS_ACCESS_KEY_ID=c["AccessKeyId"], AWS_SECRET_ACCESS_KEY=c["SecretAccessKey"], AWS_SESSION_TOKEN=c["SessionToken"]
        )

    def test_sts_identity_mfa_and_roles(self) -> None:
        me = self.ok(self.env, "sts", "get-caller-identity")
        self.assertEqual(me["Arn"], f"arn:aws:iam::{DEMO_ACCOUNT}:user/demo")
        code = self.sandbox.next_code()
        self.ok(self.env, "sts", "get-session-token", "--serial-number", self.serial, "--token-code", code)
        stderr = self.fails(
            self.env, "AccessDenied", "sts", "get-session-token", "--serial-number", self.serial, "--token-code", code
        )
        self.assertIn("invalid MFA one time pass code", stderr)
        self.fails(self.env, "AccessDenied", "sts", "get-session-token", "--serial-number", self.serial, "--token-code", "000000")
        self.fails(self.env, "AccessDenied", "sts", "assume-role", "--role-arn", self.demo_role, "--role-session-name", "demo")
        role = self.role_env(self.demo_role)
        me = self.ok(role, "sts", "get-caller-identity")
        self.assertEqual(me["Arn"], f"arn:aws:sts::{DEMO_ACCOUNT}:assumed-role/developer/demo")
        chained = self.ok(
            role, "sts", "assume-role", "--role-arn", f"arn:aws:iam::{PROD_ACCOUNT}:role/prod-ops",
            "--role-session-name", "demo", "--source-identity", "demo",
        )
        self.assertEqual(chained["SourceIdentity"], "demo")
        self.fails(
            role, "ValidationError", "sts", "assume-role", "--role-arn", f"arn:aws:iam::{PROD_ACCOUNT}:role/prod-ops",
            "--role-session-name", "demo", "--duration-seconds", "7200",
        )

    def test_ec2_inventory(self) -> None:
        role = self.role_env(self.demo_role)
        regions = self.ok(role, "ec2", "describe-regions")
        self.assertEqual([r["RegionName"] for r in regions["Regions"]], ["us-east-1", "eu-west-1", "ap-southeast-2"])
        everything = self.ok(role, "ec2", "describe-instances")
        ids = [i["InstanceId"] for r in everything["Reservations"] for i in r["Instances"]]
        self.assertEqual(len(ids), 10)
        # --page-size makes the CLI page with MaxResults/NextToken; it must still see all ten.
        paged = self.ok(role, "ec2", "describe-instances", "--page-size", "5")
        self.assertEqual(sorted(i["InstanceId"] for r in paged["Reservations"] for i in r["Instances"]), sorted(ids))
        tagged = self.ok(
            role, "ec2", "describe-instances", "--filters", "Name=tag:team,Values=payments",
            "--query", "Reservations[].Instances[].Tags[?Key=='team'].Value[]",
        )
        self.assertTrue(tagged and set(tagged) == {"payments"})
        self.fails(role, "InvalidInstanceID.NotFound", "ec2", "describe-instances", "--instance-ids", "i-0123456789abcdef0")
        self.fails(self.env, "UnauthorizedOperation", "ec2", "describe-instances")

    def test_ssm_control_plane(self) -> None:
        role = self.role_env(self.demo_role)
        nodes = self.ok(role, "ssm", "describe-instance-information")["InstanceInformationList"]
        self.assertTrue(nodes and all(n["ResourceType"] == "EC2Instance" for n in nodes))
        online = next(n["InstanceId"] for n in nodes if n["PingStatus"] == "Online")
        status = self.ok(role, "ssm", "get-connection-status", "--target", online)
        self.assertEqual(status["Status"], "connected")
        sessions = self.ok(role, "ssm", "describe-sessions", "--state", "History")["Sessions"]
        self.assertTrue(any(s["Owner"].endswith("assumed-role/developer/demo") for s in sessions))
        self.fails(role, "AccessDeniedException", "ssm", "terminate-session", "--session-id", "someone-else-0123456789abcdef0")
        self.fails(role, "ValidationException", "ssm", "describe-instance-information", "--max-results", "500")

    def test_cloudtrail_lookup(self) -> None:
        role = self.role_env(self.demo_role)
        # Start a session as the role (boto3: the CLI's start-session needs AWS's plugin).
        ssm = boto3.session.Session().client(
            "ssm", region_name="us-east-1", endpoint_url=self.sandbox.endpoint,
            aws_access_key_id=role["AWS_ACCESS_KEY_ID"], aws_secret_access_key=role["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=role["AWS_SESSION_TOKEN"],
        )
        nodes = self.ok(role, "ssm", "describe-instance-information")["InstanceInformationList"]
        started = None
        for node in (n for n in nodes if n["PingStatus"] == "Online"):
            try:
                started = ssm.start_session(Target=node["InstanceId"])["SessionId"]
                break
            except ssm.exceptions.ClientError:
                continue
        self.assertIsNotNone(started, "the role reaches at least one online instance")
        events = self.ok(
            role, "cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=EventName,AttributeValue=StartSession",
        )["Events"]
        self.assertTrue(events)
        self.assertTrue(all(e["EventName"] == "StartSession" for e in events))
        mine = next(json.loads(e["CloudTrailEvent"]) for e in events if started in e["CloudTrailEvent"])
        self.assertEqual(mine["eventSource"], "ssm.amazonaws.com")
        self.assertEqual(mine["userIdentity"]["type"], "AssumedRole")
        self.assertEqual(mine["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"], "true")
        self.fails(role, "InvalidMaxResultsException", "cloudtrail", "lookup-events", "--max-results", "51")


if __name__ == "__main__":
    unittest.main()
