"""The daemon's configuration: a TOML file, validated once, all mistakes reported together.

Secrets never live in the file: ``${VAR}`` reads the environment and every ``*_file``
key reads a file (a Kubernetes or systemd secret). Values are resolved at load, so a
config that loads is a config that can run; the resolved secrets are wrapped in
``SecretStr`` so that no repr, log line or status page can show them (invariant 5).

A config error names the file, the key path (``mapping[2].dataset``), what was
expected and what was found, for every mistake at once (invariant 6).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_KEYS = frozenset(
    {
        "username",
        "password",
        "token",
        "app_token",
        "access_key_id",
        "secret_access_key",
        "session_token",
    }
)
_S3_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$")
FOURFOUR = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$")


def parse_duration(value: object) -> float:
    """``500ms``, ``2s``, ``5m``, ``1h`` (or a bare number of seconds) → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '500ms', '2s' or '5m'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"expected a duration like '500ms', '2s' or '5m', found {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetConfig(_Section):
    url: str
    username: SecretStr | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    app_token: SecretStr | None = None
    ca_bundle: Path | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(
                f"expected an http(s) URL like https://data.example.gov, found {value!r}"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _credentials_pair(self) -> TargetConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (set both, or use token)")
        return self


class StateConfig(_Section):
    url: str = "sqlite:///var/lib/dsmsyncd/state.db"

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError(f"expected sqlite:///PATH or postgresql://..., found {value!r}")
        return value


class AdminConfig(_Section):
    listen: str = "127.0.0.1:9108"


class LimitsConfig(_Section):
    max_concurrent_jobs: int = Field(default=4, ge=1, le=256)
    max_concurrent_chunks: int = Field(default=8, ge=1, le=1024)
    drain_timeout: Duration = 60.0
    # A job that failed in a way that may heal (target down, credentials refused, the
    # file unreadable) runs again after retry_delay, doubling per attempt, jittered,
    # capped at retry_max_delay.
    retry_delay: Duration = Field(default=5.0, gt=0)
    retry_max_delay: Duration = Field(default=900.0, gt=0)
    # Attempts to read a file that cannot be opened or read before it is quarantined.
    max_read_attempts: int = Field(default=5, ge=1, le=100)


class SourceConfig(_Section):
    """One ``[[source]]``: a drop folder (``file:///PATH``) or a bucket prefix (``s3://``).

    The bucket keys apply to ``s3://`` sources only. Credentials are optional: without
    them the standard chain is used (environment, shared credentials file, web-identity
    token of a Kubernetes service account, instance metadata).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    url: str
    min_age: Duration = 2.0
    poll_interval: Duration = 30.0
    ignore: list[str] = Field(default_factory=lambda: ["*.part", "*.tmp", ".*"])
    # -- s3:// only ------------------------------------------------------------------
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    list_page_size: int = Field(default=1000, ge=1, le=1000)

    @field_validator("url")
    @classmethod
    def _supported_scheme(cls, value: str) -> str:
        if value.startswith("s3://"):
            if not _S3_URL.match(value):
                raise ValueError(
                    "expected s3://bucket/prefix/ with a bucket name of 3-63 lowercase "
                    f"letters, digits, dots or hyphens, found {value!r}"
                )
            return value
        if not value.startswith("file://"):
            raise ValueError(f"expected file:///PATH or s3://bucket/prefix/, found {value!r}")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(
                f"expected an http(s) URL like https://minio.example:9000, found {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _bucket_keys(self) -> SourceConfig:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError(
                "access_key_id and secret_access_key go together (set both, or neither "
                "to use the standard credential chain)"
            )
        if self.session_token is not None and self.access_key_id is None:
            raise ValueError("session_token needs access_key_id and secret_access_key")
        if self.url.startswith("file://"):
            bucket_only = sorted(
                key
                for key in ("endpoint_url", "region", "access_key_id", "session_token")
                if getattr(self, key) is not None
            )
            if bucket_only:
                raise ValueError(
                    f"{', '.join(bucket_only)} only apply to s3:// sources; remove them"
                )
        return self

    @property
    def path(self) -> Path:
        return Path(self.url.removeprefix("file://"))

    @property
    def bucket(self) -> str:
        """The bucket of an ``s3://`` source."""
        match = _S3_URL.match(self.url)
        if match is None:
            raise ValueError(f"source {self.name}: {self.url} is not an s3:// URL")
        return match.group(1)

    @property
    def prefix(self) -> str:
        """The key prefix of an ``s3://`` source: empty, or ending in ``/``."""
        match = _S3_URL.match(self.url)
        if match is None:
            raise ValueError(f"source {self.name}: {self.url} is not an s3:// URL")
        prefix = (match.group(2) or "").lstrip("/")
        return prefix if not prefix or prefix.endswith("/") else prefix + "/"


class MappingConfig(_Section):
    source: str
    match: str
    dataset: str
    import_config: str | None = None
    action: Literal["update", "replace", "delete"] | None = None
    max_error_rows: int = Field(default=0, ge=0)
    max_row_drop: float = Field(default=0.5, ge=0.0, le=1.0)
    allow_empty_replace: bool = False
    skip_duplicates: bool = True
    on_success: Literal["archive", "delete", "keep"] = "archive"
    archive_dir: Path | None = None
    quarantine_dir: Path

    @field_validator("dataset")
    @classmethod
    def _fourfour(cls, value: str) -> str:
        if not FOURFOUR.match(value):
            raise ValueError(f"expected a dataset id like 'abcd-1234', found {value!r}")
        return value

    @model_validator(mode="after")
    def _one_way_to_open(self) -> MappingConfig:
        if (self.import_config is None) == (self.action is None):
            raise ValueError("set exactly one of import_config or action")
        if self.on_success == "archive" and self.archive_dir is None:
            raise ValueError("on_success = 'archive' needs archive_dir")
        return self


class Config(_Section):
    target: TargetConfig
    state: StateConfig = StateConfig()
    admin: AdminConfig = AdminConfig()
    limits: LimitsConfig = LimitsConfig()
    source: list[SourceConfig] = Field(default_factory=list)
    mapping: list[MappingConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _mappings_name_sources(self) -> Config:
        names = [s.name for s in self.source]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"source names must be unique; repeated: {', '.join(duplicates)}")
        unknown = sorted({m.source for m in self.mapping} - set(names))
        if unknown:
            raise ValueError(
                f"mapping refers to unknown source(s) {', '.join(unknown)}; "
                f"known sources: {', '.join(names) or 'none'}"
            )
        return self


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


def load_config(path: Path, environ: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if environ is None else environ)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            path, [ConfigProblem("", f"cannot read the file: {exc.strerror}")]
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [ConfigProblem("", f"not valid TOML: {exc}")]) from exc
    problems: list[ConfigProblem] = []
    resolved = _resolve(raw, (), env, path.parent, problems)
    try:
        config = Config.model_validate(resolved)
    except ValidationError as exc:
        problems += [ConfigProblem(_key_path(err["loc"]), _explain(err)) for err in exc.errors()]
        raise ConfigError(path, problems) from None
    if problems:
        raise ConfigError(path, problems)
    return config


def _resolve(
    value: Any,
    loc: tuple[str | int, ...],
    env: dict[str, str],
    base: Path,
    problems: list[ConfigProblem],
) -> Any:
    """Expand ``${VAR}`` in strings and turn ``key_file = PATH`` into ``key = <file content>``."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key.endswith("_file") and isinstance(item, str):
                target = key.removesuffix("_file")
                if target in value:
                    problems.append(
                        ConfigProblem(_key_path((*loc, key)), f"set {target} or {key}, not both")
                    )
                    continue
                file = Path(_expand(item, (*loc, key), env, problems))
                file = file if file.is_absolute() else base / file
                try:
                    out[target] = file.read_text(encoding="utf-8").strip()
                except OSError as exc:
                    problems.append(
                        ConfigProblem(
                            _key_path((*loc, key)),
                            f"cannot read secret file {file}: {exc.strerror}",
                        )
                    )
                continue
            out[key] = _resolve(item, (*loc, key), env, base, problems)
        return out
    if isinstance(value, list):
        return [_resolve(item, (*loc, i), env, base, problems) for i, item in enumerate(value)]
    if isinstance(value, str):
        return _expand(value, loc, env, problems)
    return value


def _expand(
    text: str, loc: tuple[str | int, ...], env: dict[str, str], problems: list[ConfigProblem]
) -> str:
    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            problems.append(
                ConfigProblem(
                    _key_path(loc),
                    f"environment variable {name} is not set (referenced as ${{{name}}})",
                )
            )
            return ""
        return env[name]

    return _ENV_REF.sub(lookup, text)


def _key_path(loc: tuple[str | int, ...] | Any) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _explain(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (check the spelling; see config/example.toml)"
    if err["type"] == "missing":
        return "required key is missing"
    message = str(err["msg"]).removeprefix("Value error, ")
    found = err.get("input")
    secret = bool(err["loc"]) and str(err["loc"][-1]) in _SECRET_KEYS
    if err["type"] != "value_error" and not secret and not isinstance(found, dict | list):
        message += f", found {found!r}"
    return message
