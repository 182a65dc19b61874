"""Shared helpers for the peer tests: a served sandbox, the AWS CLI, oathtool, moto.

The peers are independent of this repository: the AWS CLI v1 and boto3 (each with its own copy
of botocore and the AWS service models), moto for STS and EC2, and oathtool for TOTP codes.
Only 127.0.0.1 is ever used.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_BIN = Path(os.environ.get("POSTERN_SANDBOX_BIN", ROOT / "target/debug/postern-sandbox"))
VENV_BIN = Path(sys.executable).parent
DEMO_ACCOUNT = "210987654321"
PROD_ACCOUNT = "345678901234"


class Sandbox:
    """`postern-sandbox serve` in a child process, with its export lines as `env`."""

    def __init__(self, scenario: Path | None = None) -> None:
        args = [str(SANDBOX_BIN), "serve"]
        if scenario is not None:
            args += ["--scenario", str(scenario)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.exports: dict[str, str] = {}
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.strip()
            if line == "ready":
                break
            name, _, value = line.removeprefix("export ").partition("=")
            self.exports[name] = value.strip("'")
        else:
            raise RuntimeError("postern-sandbox serve ended before `ready`")
        self.endpoint = self.exports["AWS_ENDPOINT_URL"]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def admin(self, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.endpoint + path, data=data, method="POST" if data else "GET")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def now(self) -> str:
        """The sandbox clock, as oathtool's --now wants it."""
        return self.admin("/_sandbox/clock")["now"].replace("T", " ").replace("Z", " UTC")

    def next_code(self) -> str:
        """A fresh MFA code for the demo device: move the clock to the next 30 s step first, so a
        code is never reused, and compute it with oathtool at the sandbox's time."""
        self.admin("/_sandbox/clock/advance", {"seconds": 30})
        return oathtool(self.exports["POSTERN_SANDBOX_MFA_SECRET"], self.now())

    def cli_env(self, **extra: str) -> dict[str, str]:
        """An environment for the AWS CLI that sees only the sandbox: no config files, no retries."""
        env = {
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": tempfile.gettempdir(),
            "AWS_CONFIG_FILE": "/nonexistent/postern-peers-config",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/postern-peers-credentials",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
            "AWS_PAGER": "",
        }
        for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            env[name] = self.exports[name]
        env.update(extra)
        return env


def oathtool(seed: str, now: str | None = None) -> str:
    args = ["oathtool", "--totp", "-b", seed]
    if now:
        args += ["--now", now]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


class CliResult:
    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.code = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr

    def json(self):
        return json.loads(self.stdout)

    def error_code(self) -> str | None:
        # "An error occurred (AccessDenied) when calling the AssumeRole operation: …"
        marker = "An error occurred ("
        if marker not in self.stderr:
            return None
        return self.stderr.split(marker, 1)[1].split(")", 1)[0]


def aws(env: dict[str, str], *args: str) -> CliResult:
    completed = subprocess.run(
        [str(VENV_BIN / "aws"), *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=60
    )
    return CliResult(completed)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    """moto_server on 127.0.0.1 (a peer for STS and EC2 happy paths)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        server = shutil.which("moto_server", path=str(VENV_BIN))
        if server is None:
            raise RuntimeError("moto_server is missing from the venv: run .ci/deps venv")
        self.process = subprocess.Popen(
            [server, "-H", "127.0.0.1", "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2).read()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.1)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
