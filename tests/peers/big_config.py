"""A large `~/.aws/config` like a big organisation's: many accounts, each with a base profile,
roles chained from it, SSO profiles, processes and sub-sections. Deterministic.

    python big_config.py PROFILES > config
"""

from __future__ import annotations

import sys


def big_config(profiles: int) -> str:
    out = ["# Generated: an organisation's AWS config.\n[default]\nregion = us-east-1\noutput = json\n"]
    out.append(
        "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n"
        "sso_registration_scopes = sso:account:access\n"
    )
    made = 0
    account = 0
    while made < profiles:
        account += 1
        acct = f"{100000000000 + account * 7919:012d}"
        team = ["payments", "search", "data", "platform", "identity"][account % 5]
        base = f"{team}-{account}-base"
        out.append(
            f"[profile {base}]\nregion = {['us-east-1', 'eu-west-1', 'ap-southeast-2'][account % 3]}\n"
            f"mfa_serial = arn:aws:iam::{acct}:mfa/user{account}\n"
            "s3 =\n  max_concurrent_requests = 20\n  addressing_style = path\n"
        )
        made += 1
        for i, role in enumerate(["developer", "readonly", "admin", "operator", "auditor", "deployer"]):
            if made >= profiles:
                break
            name = f"{team}-{account}-{role}"
            source = base if i < 3 else f"{team}-{account}-developer"
            extra = "duration_seconds = 3600\n" if i == 4 else ""
            extra += f"external_id = ext-{account}-{i}\n" if i == 5 else ""
            out.append(
                f"# {role} in account {account}\n[profile {name}]\n"
                f"role_arn = arn:aws:iam::{acct}:role/{team}/{role}\nsource_profile = {source}\n"
                f"role_session_name = user{account}\n{extra}"
            )
            made += 1
        if made < profiles:
            out.append(
                f"[profile {team}-{account}-sso]\nsso_session = corp\nsso_account_id = {acct}\n"
                f"sso_role_name = PowerUser\nregion = us-east-1\n"
            )
            made += 1
        if made < profiles and account % 4 == 0:
            out.append(
                f"[profile {team}-{account}-ci]\ncredential_process = /usr/local/bin/ci-creds --account {acct}\n"
                "cli_pager =\n"
            )
            made += 1
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(big_config(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
