"""Reading a configuration file: TOML, secrets resolved, every section validated, then the
checks that span sections (where sources read and mappings write must not meet).

Every command that reads a config (``run``, ``check-config``, ``status``, ``push``, a
SIGHUP reload) goes through ``load_config``, so they accept and refuse the same files.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import ValidationError

from dsmsyncd.config.job_log import with_job_log
from dsmsyncd.config.paths import finalize_dir_problems, source_overlaps
from dsmsyncd.config.schema import Config
from dsmsyncd.config.secrets import ConfigError, ConfigProblem, resolve


def load_config(path: Path, environ: dict[str, str] | None = None) -> Config:
    """Read, resolve and validate ``path``; ConfigError lists every mistake found."""
    env = dict(os.environ if environ is None else environ)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            path, [ConfigProblem("", f"cannot read the file: {exc.strerror}")]
        ) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [ConfigProblem("", f"not valid TOML: {exc}")]) from None
    resolved, resolution = resolve(raw, env, path.parent)
    problems = resolution.problems
    try:
        config = Config.model_validate(resolved)
    except ValidationError as exc:
        problems += [resolution.explain(err) for err in exc.errors()]
        raise ConfigError(path, problems) from None
    # The job log's internal source and mapping come last; their problems are its key's.
    internal = (f"source[{len(config.source)}].", f"mapping[{len(config.mapping)}].")
    config = with_job_log(config)
    found = source_overlaps(config.source)
    found += finalize_dir_problems(config.source, config.mapping)
    problems += [
        ConfigProblem(
            "log_dataset.spool_dir" if p.key.startswith(internal) else p.key,
            resolution.scrub(p.message),
        )
        for p in found
    ]
    if problems:
        raise ConfigError(path, problems)
    return config
