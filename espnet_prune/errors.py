"""Errors that carry a message a user can act on (file, line, key), shown without a traceback."""


class EspnetPruneError(Exception):
    """Base class: the CLI wrapper prints ``error: <message>`` and exits with status 2."""


class DataError(EspnetPruneError, ValueError):
    """Bad input data (audio, RTTM, UEM, scp); the message names the file and, if any, the line."""


class CheckpointError(EspnetPruneError, ValueError):
    """Missing, unreadable or mismatching checkpoint; the message names the file and the key."""


class ConfigError(EspnetPruneError, ValueError):
    """Inconsistent or unknown configuration values."""
