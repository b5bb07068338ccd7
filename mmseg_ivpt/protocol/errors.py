"""The protocol's errors: one kind per thing that can be wrong, each with
a message that names the file it is about. ``tools/protocol.py`` prints
each as the one line it is."""
from typing import Optional


class ProtocolError(Exception):
    """Base of the protocol's errors (never raised itself)."""


class MethodError(ProtocolError, ValueError):
    """A method that is not one, or that does not fit the config."""

    def __init__(self, message: str, config: Optional[str] = None):
        super().__init__(f'{config}: {message}' if config else message)
        self.config = config


class UnlistedConfigError(ProtocolError, ValueError):
    """A config that neither is one of the task configs of the protocol's
    table nor inherits from one: its benchmark and backbone are unknown."""


class PaperTableError(ProtocolError, ValueError):
    """A ``configs/{vtab,fgvc}/metafile.yml`` the report cannot read."""


class RunConflictError(ProtocolError, RuntimeError):
    """A work dir that holds a run of another config (never overwritten,
    never resumed with this one)."""


class BatchError(ProtocolError, ValueError):
    """A total batch that the number of GPUs does not divide."""
