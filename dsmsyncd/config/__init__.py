"""The daemon's configuration: a TOML file, validated once, every mistake reported
together, secrets from the environment or files and never echoed.

The base of the package: every layer may import it, and it imports nothing of theirs.
``schema`` holds the sections' models (``notify`` the ``[[notify]]`` one, ``fields``
what they share), ``load`` reads a file through them, ``paths`` checks where sources
read and mappings write, ``secrets`` resolves and hides secrets, ``redact`` masks them
in any text, ``state_url`` says which state stores can be opened.
"""

from dsmsyncd.config.load import load_config
from dsmsyncd.config.schema import Config, MappingConfig, SourceConfig
from dsmsyncd.config.secrets import ConfigError, ConfigProblem

__all__ = [
    "Config",
    "ConfigError",
    "ConfigProblem",
    "MappingConfig",
    "SourceConfig",
    "load_config",
]
