"""Error types. Every message names the file, config key or flag at fault."""


class ExpodiffError(Exception):
    """A user-facing error: the CLI prints it and exits with status 2."""


class RawReadError(ExpodiffError):
    """A raw file is missing, truncated or not a raw image."""


class ConfigError(ExpodiffError):
    """A config value or command-line flag is invalid."""
