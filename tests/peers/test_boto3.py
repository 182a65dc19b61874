"""boto3 against the sandbox, every operation (StartSession and ResumeSession included), with
each raw response checked against the botocore service model (model_check.py)."""

from __future__ import annotations

import unittest

import boto3
import botocore.config
import botocore.exceptions

from model_check import check_response
from peers import DEMO_ACCOUNT, Sandbox


class Boto3WithModelCheck(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.sandbox = Sandbox()
        cls.sandbox.admin("/_sandbox/throttle", {"lookup_events": False})
        cls.checked: list[tuple[str, str, int]] = []
        cls.problems: list[str] = []

    @classmethod
    def tearDownClass(cls) -> None:
        cls.sandbox.close()

    def client(self, service: str, credentials: dict[str, str] | None = None, region: str = "us-east-1"):
        exports = self.sandbox.exports
        credentials = credentials or {
            "aws_access_key_id": exports["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": exports["AWS_SECRET_ACCESS_KEY"],
        }
        client = boto3.session.Session().client(
            service,
            region_name=region,
            endpoint_url=self.sandbox.endpoint,
            config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
            **credentials,
        )

        def record(http_response, model, **_):
            problems = check_response(service, model.name, http_response.status_code, http_response.content)
            self.checked.append((service, model.name, http_response.status_code))
            self.problems.extend(f"{service}.{model.name} ({http_response.status_code}): {p}" for p in problems)

        client.meta.events.register("after-call", record)
        return client

    def assertMatchesModels(self) -> None:
        self.assertEqual(self.problems, [], "raw responses that do not match the service models")

    def code(self, call, **params) -> str:
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            call(**params)
        return caught.exception.response["Error"]["Code"]

    def role(self, role_arn: str) -> dict[str, str]:
        sts = self.client("sts")
        session = sts.get_session_token(
            SerialNumber=self.sandbox.exports["POSTERN_SANDBOX_MFA_SERIAL"], TokenCode=self.sandbox.next_code()
        )["Credentials"]
        as_session = self.client("sts", {
            "aws_access_key_id": session["AccessKeyId"],
            "aws_secret_access_key": session["SecretAccessKey"],
            "aws_session_token": session["SessionToken"],
        })
        c = as_session.assume_role(RoleArn=role_arn, RoleSessionName="demo", SourceIdentity="demo")["Credentials"]
        return {
            "aws_access_key_id": c["AccessKeyId"],
            "aws_secret_access_key": c["SecretAccessKey"],
            "aws_session_token": c["SessionToken"],
        }

    def test_every_operation_answers_in_the_modelled_shape(self) -> None:
        sts = self.client("sts")
        sts.get_caller_identity()
        self.assertEqual(self.code(sts.assume_role, RoleArn=self.sandbox.exports["POSTERN_SANDBOX_ROLE_ARN"], RoleSessionName="demo"), "AccessDenied")
        self.assertEqual(self.code(sts.get_session_token, SerialNumber=self.sandbox.exports["POSTERN_SANDBOX_MFA_SERIAL"], TokenCode="000000"), "AccessDenied")
        role = self.role(self.sandbox.exports["POSTERN_SANDBOX_ROLE_ARN"])

        ec2 = self.client("ec2", role)
        ec2.describe_regions()
        page = ec2.describe_instances(MaxResults=5)
        ec2.describe_instances(MaxResults=5, NextToken=page["NextToken"])
        ec2.describe_instances(Filters=[{"Name": "tag:team", "Values": ["payments", "search"]}])
        self.assertEqual(self.code(ec2.describe_instances, InstanceIds=["i-0123456789abcdef0"]), "InvalidInstanceID.NotFound")
        self.assertEqual(self.code(ec2.describe_instances, Filters=[{"Name": "nope", "Values": ["x"]}]), "InvalidParameterValue")
        self.assertEqual(self.code(ec2.describe_instances, DryRun=True), "DryRunOperation")

        ssm = self.client("ssm", role)
        nodes = ssm.describe_instance_information(MaxResults=50)["InstanceInformationList"]
        ssm.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["Online"]}], MaxResults=5)
        self.assertEqual(self.code(ssm.describe_instance_information, Filters=[{"Key": "Nope", "Values": ["x"]}]), "InvalidFilterKey")
        tags = {i["InstanceId"]: {t["Key"]: t["Value"] for t in i.get("Tags", [])} for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
        reachable = next(n["InstanceId"] for n in nodes if n["PingStatus"] == "Online" and tags[n["InstanceId"]].get("team") in ("payments", "search"))
        forbidden = next(n["InstanceId"] for n in nodes if n["PingStatus"] == "Online" and tags[n["InstanceId"]].get("team") == "data")
        started = ssm.start_session(Target=reachable)
        self.assertTrue(started["SessionId"].startswith("demo-"))
        self.assertTrue(started["StreamUrl"].startswith("ws://127.0.0.1:"))
        forwarded = ssm.start_session(
            Target=reachable, DocumentName="AWS-StartPortForwardingSession",
            Parameters={"portNumber": ["22"], "localPortNumber": ["0"]},
        )
        self.assertEqual(self.code(ssm.start_session, Target=forbidden), "AccessDeniedException")
        self.assertEqual(self.code(ssm.start_session, Target=reachable, DocumentName="Nope-Doc"), "InvalidDocument")
        resumed = ssm.resume_session(SessionId=started["SessionId"])
        self.assertNotEqual(resumed["TokenValue"], started["TokenValue"], "each resume mints a new token")
        ssm.describe_sessions(State="Active")
        ssm.get_connection_status(Target=reachable)
        ssm.terminate_session(SessionId=started["SessionId"])
        ssm.terminate_session(SessionId=forwarded["SessionId"])
        ssm.describe_sessions(State="History", MaxResults=2)
        self.assertEqual(self.code(ssm.resume_session, SessionId=started["SessionId"]), "DoesNotExistException")

        trail = self.client("cloudtrail", role)
        events = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "StartSession"}])["Events"]
        self.assertTrue(any(started["SessionId"] in e["CloudTrailEvent"] for e in events))
        trail.lookup_events(MaxResults=1)
        self.assertEqual(self.code(trail.lookup_events, LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "StartSession"},
            {"AttributeKey": "Username", "AttributeValue": "demo"},
        ]), "InvalidLookupAttributesException")

        unknown = {"aws_access_key_id": "AKIAEXAMPLEUNKNOWN01", "aws_secret_access_key": "x" * 40}
        self.assertEqual(self.code(self.client("sts", unknown).get_caller_identity), "InvalidClientTokenId")
        self.assertEqual(self.code(self.client("ec2", unknown).describe_regions), "AuthFailure")
        self.assertEqual(self.code(self.client("ssm", unknown).describe_sessions, State="Active"), "UnrecognizedClientException")
        self.assertEqual(self.code(self.client("cloudtrail", unknown).lookup_events), "UnrecognizedClientException")

        operations = {(s, o) for s, o, _ in self.checked}
        for expected in [
            ("sts", "GetCallerIdentity"), ("sts", "GetSessionToken"), ("sts", "AssumeRole"),
            ("ec2", "DescribeInstances"), ("ec2", "DescribeRegions"),
            ("ssm", "DescribeInstanceInformation"), ("ssm", "StartSession"), ("ssm", "ResumeSession"),
            ("ssm", "TerminateSession"), ("ssm", "DescribeSessions"), ("ssm", "GetConnectionStatus"),
            ("cloudtrail", "LookupEvents"),
        ]:
            self.assertIn(expected, operations)
        self.assertGreater(sum(1 for *_, status in self.checked if status >= 400), 10)
        self.assertMatchesModels()


if __name__ == "__main__":
    unittest.main()
