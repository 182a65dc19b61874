"""Postern reads AWS config files as the AWS CLI does: botocore (the CLI's parser) and
`postern profiles --dump` read the same fixtures and must agree on every profile, SSO session
and services section; a file botocore refuses Postern refuses too (and still reads the rest).

Fixtures: tests/fixtures/aws-config/, plus CRLF, byte-order-mark and non-UTF-8 variants and a
2,000-profile file made here.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import unittest
from pathlib import Path

import botocore.configloader
import botocore.exceptions
import botocore.session

from big_config import big_config
from peers import ROOT

FIXTURES = ROOT / "tests/fixtures/aws-config"
POSTERN = Path(os.environ.get("POSTERN_BIN", ROOT / "target/debug/postern"))


SECRET_KEYS = ("aws_secret_access_key", "aws_session_token", "aws_security_token")
REDACTED = "(secret, not shown)"


def redact(profiles: dict) -> dict:
    """Postern's dump never shows secret values: compare botocore's with the same cut."""
    return {
        name: {k: (REDACTED if k in SECRET_KEYS and isinstance(v, str) else v) for k, v in keys.items()}
        for name, keys in profiles.items()
    }


def botocore_view(config: Path, credentials: Path) -> dict:
    """What botocore makes of the two files: the profiles, or which file it refuses."""
    refused = []
    for path in (config, credentials):
        if path.exists():
            try:
                botocore.configloader.raw_config_parse(str(path))
            except botocore.exceptions.ConfigParseError:
                refused.append(str(path))
    if refused:
        return {"refused": sorted(refused)}
    session = botocore.session.Session()
    session.set_config_variable("config_file", str(config))
    session.set_config_variable("credentials_file", str(credentials))
    full = session.full_config
    return {
        "refused": [],
        "profiles": redact(full.get("profiles", {})),
        "sso_sessions": full.get("sso_sessions", {}),
        "services": full.get("services", {}),
    }


def postern_view(config: Path, credentials: Path) -> dict:
    with tempfile.TemporaryDirectory() as home:
        out = subprocess.run(
            [str(POSTERN), "profiles", "--dump"],
            env={
                "PATH": os.environ.get("PATH", ""),
                "HOME": home,
                "POSTERN_HOME": home,
                "AWS_CONFIG_FILE": str(config),
                "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            },
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    return json.loads(out.stdout)


class Profiles(unittest.TestCase):
    def compare(self, config: Path, credentials: Path) -> dict:
        theirs = botocore_view(config, credentials)
        ours = postern_view(config, credentials)
        self.assertEqual(sorted(ours["refused"]), theirs["refused"], f"refused files of {config.name}")
        if theirs["refused"]:
            # Refused, but not thrown away: each refused file's problems name a line.
            for path in theirs["refused"]:
                errors = [p for p in ours["problems"] if p["path"] == path and p["severity"] == "error"]
                self.assertTrue(errors, f"no error named for {path}")
                self.assertTrue(all(p["line"] >= 1 for p in errors))
            return ours
        for part in ("profiles", "sso_sessions", "services"):
            self.assertEqual(ours[part], theirs[part], f"{part} of {config.name}")
        return ours

    def test_every_fixture(self) -> None:
        configs = sorted(FIXTURES.glob("*.config"))
        self.assertGreater(len(configs), 8)
        for config in configs:
            with self.subTest(fixture=config.name):
                self.compare(config, config.with_suffix(".credentials"))

    def test_realistic_fixture_details(self) -> None:
        ours = self.compare(FIXTURES / "realistic.config", FIXTURES / "realistic.credentials")
        profiles = ours["profiles"]
        # Things the AWS CLI does that a naive reader would not.
        self.assertEqual(profiles["prod"]["region"], "us-west-1")  # the credentials file wins
        self.assertEqual(profiles["base"]["output"], "json")  # from [DEFAULT]
        self.assertIn("quirky", profiles)  # [profiles quirky]
        self.assertIn("with space", profiles)
        self.assertIn("profile prefixed", profiles)
        self.assertEqual(profiles["continued"]["description"], "a value\nthat goes on\nand on (after a tab)")
        messages = "\n".join(p["message"] for p in ours["problems"])
        for expected in (
            "`regoin` is not a key Postern knows; it is kept (did you mean `region`?)",
            "[staging] is not a profile in the config file: write [profile staging]",
            "`region` is in quotes",
            "`region` has a comment after it",
            "[profile a b] cannot be read as a profile name",
            "in the credentials file is a profile named \"profile prefixed\"",
        ):
            self.assertIn(expected, messages)

    def test_generated_variants(self) -> None:
        realistic = (FIXTURES / "realistic.config").read_bytes()
        credentials = FIXTURES / "realistic.credentials"
        variants = {
            "crlf": realistic.replace(b"\n", b"\r\n"),
            "bom": b"\xef\xbb\xbf" + realistic,
            "not-utf8": realistic.replace(b"jane", b"j\xe9ne"),
            "big": big_config(2000).encode(),
        }
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in variants.items():
                with self.subTest(variant=name):
                    path = Path(tmp) / f"{name}.config"
                    path.write_bytes(data)
                    ours = self.compare(path, credentials)
                    if name == "big":
                        self.assertGreaterEqual(len(ours["profiles"]), 2000)
                    if name in ("bom", "not-utf8"):
                        self.assertIn(str(path), ours["refused"])

    def test_the_dump_shows_no_secret(self) -> None:
        with tempfile.TemporaryDirectory() as home:
            out = subprocess.run(
                [str(POSTERN), "profiles", "--dump"],
                env={
                    "PATH": os.environ.get("PATH", ""),
                    "HOME": home,
                    "POSTERN_HOME": home,
                    "AWS_CONFIG_FILE": str(FIXTURES / "realistic.config"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(FIXTURES / "realistic.credentials"),
                },
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
        for secret in ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLETOKEN"):
            self.assertNotIn(secret, out)

    def test_an_unclosed_header_is_named_and_read_as_meant(self) -> None:
        ours = self.compare(FIXTURES / "unclosed-header.config", FIXTURES / "none.credentials")
        errors = [(p["line"], p["message"]) for p in ours["problems"] if p["severity"] == "error"]
        self.assertTrue(
            any(line == 4 and "[profile b has no closing `]`" in message and "write [profile b]" in message
                for line, message in errors),
            errors,
        )
        # The keys under it are b's, not a's.
        self.assertEqual(ours["profiles"]["b"]["source_profile"], "a")
        self.assertEqual(ours["profiles"]["a"], {"region": "us-east-1"})

    def test_refused_file_still_yields_its_good_profiles(self) -> None:
        ours = postern_view(FIXTURES / "duplicate-section.config", FIXTURES / "none.credentials")
        self.assertEqual(ours["profiles"]["b"], {"region": "x"})
        self.assertEqual(ours["profiles"]["a"], {"region": "us-east-1", "output": "json"})


if __name__ == "__main__":
    unittest.main()
