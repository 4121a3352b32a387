"""Values that are not a version of a stage's model package group: each must be refused, whoever receives it."""

from __future__ import annotations

import pytest


def wrong_arns(*, region: str, account: str, group: str, version: int) -> list[object]:
    """pytest params of (ARN, why it is wrong) built around the good ARN of ``version``."""
    good = f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/{version}"
    prefix = f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/"
    cases = {
        "shell separator": f"{good};curl x",
        "command substitution": f"{good}$(id)",
        "substitution as the version": f"{prefix}$(id)",
        "backticks": f"{good}`id`",
        "space and a flag": f"{good} --require-approval never",
        "leading space": f" {good}",
        "NUL": f"{good}\x00",
        "newline": f"{good}\n",
        "newline and a command": f"{good}\ncurl x",
        "pipe": f"{good}|sh",
        "other account": good.replace(f":{account}:", ":999999999999:"),
        "other region": good.replace(f":{region}:", ":eu-west-1:" if region != "eu-west-1" else ":us-east-1:"),
        "other partition": good.replace("arn:aws:", "arn:aws-cn:"),
        "other group": good.replace(f"/{group}/", "/someone-elses-group/"),
        "group prefix": good.replace(f"/{group}/", f"/{group}-x/"),
        "version 0": f"{prefix}0",
        "leading zero": f"{prefix}0{version}",
        "non-numeric version": f"{prefix}latest",
        "ten-digit version": f"{prefix}1234567890",
        "non-ASCII digit": f"{prefix}\u0663",
        "prefix only": prefix.rstrip("/"),
        "trailing slash": f"{good}/",
        "group path": f"{prefix}{version}/{version}",
        "other service": f"arn:aws:s3:::{group}/{version}",
        "upper case": good.upper(),
        "empty": "",
    }
    return [pytest.param(arn, id=why) for why, arn in cases.items()]
