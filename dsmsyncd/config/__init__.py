"""The daemon's configuration: a TOML file, validated once, every mistake reported
together, secrets from the environment or files and never echoed."""
