"""Exceptions that carry what a user needs to fix a problem (file, line, what to do)."""


class EvalkitError(Exception):
    """Base class for errors the CLI reports as one line, without a traceback."""


class InputError(EvalkitError):
    """Bad input: a missing folder, a malformed file or line, an unknown name."""


class ConfigError(EvalkitError):
    """An inconsistent request: unknown task/protocol, a results folder made with other settings."""


class OutputError(EvalkitError):
    """A file evalkit must write cannot be written (disk full, read-only folder, no permission)."""
