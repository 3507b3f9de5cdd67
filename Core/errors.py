"""Errors that reach the user as one clear line (the CLI prints str(err), never a traceback)."""


class LuxaError(Exception):
    """Base of every error that the CLI reports as a one-line message and a non-zero exit."""

    exit_code = 1


class ConfigError(LuxaError):
    exit_code = 2


class ModelMissingError(LuxaError):
    pass


class AudioInputError(LuxaError):
    """Audio the assistant cannot use: unreadable, empty, silent, NaN, too short or too long."""


class TextInputError(LuxaError):
    """Text that cannot be spoken: empty, only symbols, or binary data."""


class GpuError(LuxaError):
    pass


class BackendError(LuxaError):
    """A backend failed one request; the fallback chain records it and tries the next."""


class AllBackendsFailed(LuxaError):
    pass
