"""How the tools end on a named error: one line, not a traceback.

The toolbox's errors (every exception class defined in ``mmseg_ivpt``:
``ConfigError``, ``CheckpointMismatchError`` and its ``EncoderMismatchError``
and ``MethodMismatchError``, ``CheckpointFileError``, ``DataError``...) and
``FileNotFoundError`` carry a message that names the file or option and says
what to do. A tool run through :func:`run_main` ends on one of them with::

    test.py: error: EncoderMismatchError: work_dirs/.../iter_4.pth was ...

on stderr and exit status 1, as the data set converters do. ``--debug``
anywhere on the command line shows the traceback instead (the tools that
take it list it in their ``--help``: ``add_common_args`` of
``mmseg_ivpt/engine/runner.py``). Any other exception is a bug, and keeps
its traceback.

Standard library only.
"""
import os.path as osp
import sys

#: the option that keeps the traceback
DEBUG_FLAG = '--debug'
DEBUG_HELP = ('on an error of the toolbox, show the traceback (default: '
              'one line "error: ...")')


def named_error(e: BaseException) -> bool:
    """Whether ``e`` is one of the toolbox's named errors (its class is
    defined in ``mmseg_ivpt``) or a ``FileNotFoundError``."""
    return isinstance(e, FileNotFoundError) or \
        type(e).__module__.split('.')[0] == 'mmseg_ivpt'


def run_main(main, *args):
    """``main(*args)``; a named error ends the tool with one line
    ``<tool>: error: <Error>: <message>`` and exit status 1, unless
    ``--debug`` is on the command line."""
    try:
        return main(*args)
    except Exception as e:
        if DEBUG_FLAG in sys.argv[1:] or not named_error(e):
            raise
        tool = osp.basename(sys.argv[0])
        sys.stderr.flush()
        sys.exit(f'{tool}: error: {type(e).__name__}: {e}')
