"""Secrets in the configuration: ``${VAR}`` and ``*_file`` resolved, and kept out of errors.

Values are resolved before validation, so a config that loads is a config that can
run. Resolving also remembers, per key, where a value came from. A config error about
such a key names that origin (``${PGPASSWORD}``, ``password_file /run/secrets/pw``)
and never the value: an environment variable or a secret file may hold a password
even under a key that is not a secret itself (``postgresql://u:${PGPASSWORD}@db``).
As a last step every message is scrubbed of the resolved values and of URL userinfo,
whichever validator wrote it, so that no config error prints a secret (invariant 5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsmsyncd.config.redact import REDACTED, redact_text

Loc = tuple[str | int, ...]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Keys whose values are secrets wherever they appear: never shown, whatever their origin.
SECRET_KEYS = frozenset(
    {
        "username",
        "password",
        "token",
        "app_token",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "smtp_username",
        "smtp_password",
        "webhook_url",
    }
)
# Resolved values shorter than this are not scrubbed out of free text (they would
# garble every message); they are still never shown as a key's value.
SCRUB_MIN_CHARS = 4


@dataclass(frozen=True)
class ConfigProblem:
    key: str
    message: str


class ConfigError(Exception):
    """Every mistake in one config file, each with its key path."""

    def __init__(self, path: Path, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        lines = [f"{path}: {len(problems)} problem(s) in the configuration:"]
        lines += [f"  {p.key or '(top level)'}: {p.message}" for p in problems]
        super().__init__("\n".join(lines))


@dataclass
class Resolution:
    """What resolving learned: its problems, each resolved key's origin, the resolved texts."""

    problems: list[ConfigProblem] = field(default_factory=list)
    origins: dict[Loc, str] = field(default_factory=dict)
    values: set[str] = field(default_factory=set)

    def problem(self, loc: Loc, message: str) -> None:
        self.problems.append(ConfigProblem(key_path(loc), self.scrub(message)))

    def scrub(self, text: str) -> str:
        """``text`` without any resolved value (longest first) and without URL userinfo."""
        for value in sorted(self.values, key=len, reverse=True):
            if len(value) >= SCRUB_MIN_CHARS:
                text = text.replace(value, REDACTED)
        return redact_text(text)

    def explain(self, err: Any) -> ConfigProblem:
        """A pydantic error as a problem: key, what was wrong, and a value only if harmless."""
        loc: Loc = tuple(err["loc"])
        return ConfigProblem(key_path(loc), self.scrub(self._message(loc, err)))

    def _message(self, loc: Loc, err: Any) -> str:
        if err["type"] == "extra_forbidden":
            return "unknown key (check the spelling; see config/example.toml)"
        if err["type"] == "missing":
            return "required key is missing"
        message = str(err["msg"]).removeprefix("Value error, ")
        found = err.get("input")
        if isinstance(found, dict | list):  # a whole table: the message names what is wrong
            return message
        origin = self.origins.get(loc)
        if bool(loc) and str(loc[-1]) in SECRET_KEYS:
            where = f" (set from {origin})" if origin else ""
            return f"{message}{where}; the value is a secret and is not shown"
        if origin is not None:
            return f"{message}; the value comes from {origin} and is not shown"
        return f"{message}, found {found!r}"


def resolve(raw: dict[str, Any], env: dict[str, str], base: Path) -> tuple[Any, Resolution]:
    """Expand ``${VAR}`` in strings and turn ``key_file = PATH`` into ``key = <file content>``."""
    resolution = Resolution()
    return _resolve(raw, (), env, base, resolution), resolution


def _resolve(value: Any, loc: Loc, env: dict[str, str], base: Path, out: Resolution) -> Any:
    if isinstance(value, dict):
        table: dict[str, Any] = {}
        for key, item in value.items():
            if key.endswith("_file") and isinstance(item, str):
                _read_secret_file(table, value, (*loc, key), item, env, base, out)
            else:
                table[key] = _resolve(item, (*loc, key), env, base, out)
        return table
    if isinstance(value, list):
        return [_resolve(item, (*loc, i), env, base, out) for i, item in enumerate(value)]
    if isinstance(value, str):
        return _expand(value, loc, env, out)
    return value


def _read_secret_file(
    table: dict[str, Any],
    siblings: dict[str, Any],
    loc: Loc,
    item: str,
    env: dict[str, str],
    base: Path,
    out: Resolution,
) -> None:
    key = str(loc[-1])
    target = key.removesuffix("_file")
    if target in siblings:
        out.problem(loc, f"set {target} or {key}, not both")
        return
    file = Path(_expand(item, loc, env, out))
    file = file if file.is_absolute() else base / file
    try:
        content = file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        out.problem(loc, f"cannot read secret file {file} ({exc.strerror})")
        return
    except UnicodeDecodeError:
        out.problem(loc, f"secret file {file} is not UTF-8 text")
        return
    table[target] = content
    out.origins[(*loc[:-1], target)] = f"{key} ({file})"
    out.values.add(content)


def _expand(text: str, loc: Loc, env: dict[str, str], out: Resolution) -> str:
    names: list[str] = []

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            out.problem(loc, f"environment variable {name} is not set (referenced as ${{{name}}})")
            return ""
        names.append(name)
        out.values.add(env[name])
        return env[name]

    expanded = _ENV_REF.sub(lookup, text)
    if names:
        out.origins[loc] = ", ".join(f"${{{name}}}" for name in dict.fromkeys(names))
    return expanded


def key_path(loc: Loc | Any) -> str:
    """``("mapping", 2, "dataset")`` → ``mapping[2].dataset``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
