"""The daemon's configuration: a TOML file, validated once, all mistakes reported together.

Secrets never live in the file: ``${VAR}`` reads the environment and every ``*_file``
key reads a file (a Kubernetes or systemd secret). Values are resolved at load, so a
config that loads is a config that can run; the resolved secrets are wrapped in
``SecretStr`` so that no repr, log line or status page can show them (invariant 5),
and ``config_secrets`` keeps them out of every error message.

A config error names the file, the key path (``mapping[2].dataset``), what was
expected and, unless it may be a secret, what was found, for every mistake at once
(invariant 6). This module holds the sections' models and their own checks;
``load.py`` reads a file through them (``load_config``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from dsmsyncd.config.fields import Duration, Section, loadable_ca_bundle, parse_duration
from dsmsyncd.config.hours import check_timezone, check_window
from dsmsyncd.config.notify import NotifyConfig
from dsmsyncd.config.rates import parse_rate
from dsmsyncd.config.state_url import check_state_url, is_postgres_url, url_has_password

__all__ = [
    "ACTIONS",
    "Action",
    "AdminConfig",
    "Config",
    "LimitsConfig",
    "LogDatasetConfig",
    "MappingConfig",
    "NotifyConfig",
    "SourceConfig",
    "StateConfig",
    "TargetConfig",
    "parse_duration",
]

Action = Literal["update", "replace", "delete"]
"""How a revision opened without an import config changes its dataset (digest §1.1)."""
ACTIONS: tuple[Action, ...] = get_args(Action)

_S3_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$")
_HOSTNAME = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
# The internal source that publishes the [log_dataset] rows: no [[source]] may take it.
JOB_LOG_SOURCE = "_job_log"
FOURFOUR = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$")
_NO_USERINFO = (
    "credentials in the URL are refused (they would end up in logs and status pages); "
    "remove 'user:password@' and set them with the credential keys of this section"
)


Rate = Annotated[int, BeforeValidator(parse_rate)]
# Each entry is checked on its own, so an error names it: limits.active_hours[1].
ActiveHours = list[Annotated[str, AfterValidator(check_window)]]
TimeZoneName = Annotated[str, AfterValidator(check_timezone)]


def _accepted_by(check: Callable[[str], object]) -> AfterValidator:
    """A string that ``check`` accepts (it raises ValueError otherwise), kept as written."""

    def validate(value: str) -> str:
        check(value)
        return value

    return AfterValidator(validate)


def split_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9108`` for IPv6) → (host, port); ValueError says the form."""
    host, sep, port = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if sep and port.isdigit() and int(port) <= 65535 and _is_host(host):
        return host, int(port)
    raise ValueError(
        "expected HOST:PORT with a port from 0 to 65535, like 127.0.0.1:9108, "
        "0.0.0.0:9108 or [::1]:9108 (port 0 picks a free port)"
    )


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOSTNAME.match(host)) and len(host) <= 253
    return True


class TargetConfig(Section):
    url: str
    username: SecretStr | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    app_token: SecretStr | None = None
    ca_bundle: Path | None = None
    # One request's whole time budget: a target that takes a request and never answers
    # costs this much, then the request fails as a transport error and is retried.
    request_timeout: Duration = Field(default=300.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected an http(s) URL like https://data.example.gov")
        _refuse_userinfo(value)
        return value.rstrip("/")

    @field_validator("ca_bundle")
    @classmethod
    def _loadable_ca(cls, value: Path | None) -> Path | None:
        return loadable_ca_bundle(value)

    @model_validator(mode="after")
    def _credentials_pair(self) -> TargetConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (set both, or use token)")
        return self


class StateConfig(Section):
    url: Annotated[str, _accepted_by(check_state_url)] = "sqlite:///var/lib/dsmsyncd/state.db"
    # PostgreSQL's password when the URL carries none: ``password_file`` reads it from a
    # mounted secret, and it need not be percent-encoded the way a URL's would be.
    password: SecretStr | None = None
    # Replicas on one PostgreSQL database: each needs its own name (the host name, a
    # pod's name, by default). A replica that dies loses its lanes after lease_timeout,
    # and another replica takes them over: the failover time.
    replica: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:@-]{1,63}$")
    lease_timeout: Duration = Field(default=30.0, ge=2.0, le=3600.0)

    @model_validator(mode="after")
    def _password_for_postgres(self) -> StateConfig:
        if self.password is None:
            return self
        if not is_postgres_url(self.url):
            raise ValueError("password is for a postgresql:// url; a SQLite url takes none")
        if url_has_password(self.url):
            raise ValueError("the url carries a password already: set it in one place")
        return self

    @property
    def password_text(self) -> str | None:
        return None if self.password is None else self.password.get_secret_value()


class AdminConfig(Section):
    listen: Annotated[str, _accepted_by(split_listen)] = "127.0.0.1:9108"

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]


def _refuse_userinfo(url: str) -> None:
    if "@" in urlsplit(url).netloc:
        raise ValueError(_NO_USERINFO)


class LimitsConfig(Section):
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
    # Upload bytes/s across the daemon (one token bucket, SIGHUP changes it); 0: none.
    max_upload_rate: Rate = 0
    # When jobs may start (``config/hours.py``); a mapping's own active_hours wins.
    active_hours: ActiveHours | None = Field(default=None, min_length=1)
    timezone: TimeZoneName = "UTC"


class SourceConfig(Section):
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
                    "letters, digits, dots or hyphens"
                )
            return value
        if not value.startswith("file://"):
            raise ValueError("expected file:///PATH or s3://bucket/prefix/")
        _refuse_userinfo(value)
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            if not re.match(r"^https?://[^/\s]+", value):
                raise ValueError("expected an http(s) URL like https://minio.example:9000")
            _refuse_userinfo(value)
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
        return self._s3_url().group(1)

    @property
    def prefix(self) -> str:
        """The key prefix of an ``s3://`` source: empty, or ending in ``/``."""
        prefix = (self._s3_url().group(2) or "").lstrip("/")
        return prefix if not prefix or prefix.endswith("/") else prefix + "/"

    def _s3_url(self) -> re.Match[str]:
        match = _S3_URL.match(self.url)
        if match is None:
            raise ValueError(f"source {self.name}: {self.url} is not an s3:// URL")
        return match


class MappingConfig(Section):
    source: str
    match: str
    dataset: str
    import_config: str | None = None
    action: Action | None = None
    max_error_rows: int = Field(default=0, ge=0)
    max_row_drop: float = Field(default=0.5, ge=0.0, le=1.0)
    allow_empty_replace: bool = False
    skip_duplicates: bool = True
    on_success: Literal["archive", "delete", "keep"] = "archive"
    archive_dir: Path | None = None
    quarantine_dir: Path
    # "stage": leave each checked revision open for a person to read, then publish it
    # with ``dsmsyncd apply`` (or throw it away with ``dsmsyncd discard``).
    publish: Literal["auto", "stage"] = "auto"
    # What a new file of this mapping does when a staged revision of its dataset is
    # ahead of it: wait until that one is applied or discarded, or supersede it
    # (discard it and quarantine its file with a report saying so).
    on_staged: Literal["wait", "supersede"] = "wait"
    # This mapping's windows (and their zone), instead of [limits] ones.
    active_hours: ActiveHours | None = Field(default=None, min_length=1)
    timezone: TimeZoneName | None = None

    @field_validator("dataset")
    @classmethod
    def _fourfour(cls, value: str) -> str:
        if not FOURFOUR.match(value):
            raise ValueError("expected a dataset id like 'abcd-1234'")
        return value

    @model_validator(mode="after")
    def _one_way_to_open(self) -> MappingConfig:
        if (self.import_config is None) == (self.action is None):
            raise ValueError("set exactly one of import_config or action")
        if self.on_success == "archive" and self.archive_dir is None:
            raise ValueError("on_success = 'archive' needs archive_dir")
        return self


def _fourfour_id(value: str) -> None:
    if not FOURFOUR.match(value):
        raise ValueError("expected a dataset id like 'abcd-1234'")


class LogDatasetConfig(Section):
    """``[log_dataset]``: every job that ends in an outcome appends one row to this
    dataset, through the pipeline itself (``daemon/job_log.py``)."""

    dataset: Annotated[str, _accepted_by(_fourfour_id)]
    # Rows wait here, in CSV batches, until the pipeline has published them: a private
    # folder of the daemon (created if missing), never a drop folder.
    spool_dir: Path = Path("/var/lib/dsmsyncd/job-log")
    # A batch is published once it holds batch_rows rows, or batch_interval after its
    # first row, and at shutdown (that batch is sent at the next start).
    batch_rows: int = Field(default=100, ge=1, le=100_000)
    batch_interval: Duration = Field(default=60.0, gt=0)

    @field_validator("spool_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("expected an absolute path, like /var/lib/dsmsyncd/job-log")
        return value


class Config(Section):
    target: TargetConfig
    state: StateConfig = StateConfig()
    admin: AdminConfig = AdminConfig()
    limits: LimitsConfig = LimitsConfig()
    source: list[SourceConfig] = Field(default_factory=list)
    mapping: list[MappingConfig] = Field(default_factory=list)
    notify: list[NotifyConfig] = Field(default_factory=list)
    log_dataset: LogDatasetConfig | None = None

    @model_validator(mode="after")
    def _mappings_name_sources(self) -> Config:
        names = [s.name for s in self.source]
        if JOB_LOG_SOURCE in names:
            raise ValueError(f"source name {JOB_LOG_SOURCE!r} is the job log's own; rename it")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"source names must be unique; repeated: {', '.join(duplicates)}")
        unknown = sorted({m.source for m in self.mapping} - set(names))
        if unknown:
            raise ValueError(
                f"mapping refers to unknown source(s) {', '.join(unknown)}; "
                f"known sources: {', '.join(names) or 'none'}"
            )
        labels = [n.label(i) for i, n in enumerate(self.notify)]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"notify names must be unique; repeated: {', '.join(repeated)}")
        return self
