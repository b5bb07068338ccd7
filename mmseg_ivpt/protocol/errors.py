"""The protocol's errors: one kind per thing that can be wrong, each with
a message that names the file it is about. The stages
(:mod:`.stages`) raise them, never ``SystemExit``; ``tools/protocol.py``
prints each as the one line it is."""
from typing import List, Optional, Tuple


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


class SpecError(ProtocolError, ValueError):
    """A :class:`~.stages.Spec` that does not fit: a config that does not
    exist, ``lr`` and ``paper_lr`` both given, a backbone without configs
    of the benchmark."""


class LaunchError(ProtocolError, ValueError):
    """A launcher that cannot start: too few GPUs for the workers, no
    ``sbatch``, a partition Slurm does not know."""


class SweepIncompleteError(ProtocolError, RuntimeError):
    """``final`` of a task whose sweep has no ``best.json``, has runs not
    finished, or finished runs its ``best.json`` does not count."""


class RunsFailedError(ProtocolError, RuntimeError):
    """Runs of a stage failed. Raised once the stage has done all it could
    (the other runs trained, the summaries of the complete tasks written):
    ``failed`` lists (label, log) of each failed run in the plan's order,
    ``result`` is what the stage returns otherwise."""

    def __init__(self, failed: List[Tuple[str, str]], result=None):
        super().__init__(f'{len(failed)} run(s) failed: ' + '; '.join(
            f'{label} (log {log})' for label, log in failed))
        self.failed, self.result = failed, result
