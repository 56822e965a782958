"""Names of SageMaker jobs: unique by default (second, plus a random suffix), checked when the user gives one."""

from __future__ import annotations

import re
import secrets
import time

from dogclf.errors import ConfigError

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")  # SageMaker's rule for job and endpoint names
MAX_LENGTH = {"training": 63, "tuning": 32, "transform": 63}  # tuning job names are capped at 32 characters


def unique_name(base: str, kind: str = "training") -> str:
    """`base-YYMMDD-HHMMSS-xxxx`: two jobs started in the same second still get two names."""
    suffix = f"-{time.strftime('%y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"
    return base[: MAX_LENGTH[kind] - len(suffix)].rstrip("-") + suffix


def checked_name(name: str, kind: str = "training") -> str:
    """`name` when SageMaker accepts it for a `kind` job, else a ConfigError that says why."""
    limit = MAX_LENGTH[kind]
    if len(name) > limit or not NAME_PATTERN.match(name):
        raise ConfigError(
            f"--job-name {name!r}: a {kind} job name has 1-{limit} letters, digits and hyphens "
            "(no leading or trailing hyphen)"
        )
    return name


def job_name(given: str | None, base: str, kind: str = "training") -> str:
    """The checked `given` name, else a unique one from `base`."""
    return checked_name(given, kind) if given else unique_name(base, kind)
