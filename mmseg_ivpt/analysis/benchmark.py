"""The one benchmark harness of ``tools/analysis/``: one interleaved timing
loop, one peak-memory measurement, one summary.

Every benchmark and report (``benchmark_backbone.py``, ``benchmark_bank.py``,
``runtime_report.py``) measures through these three functions, so their
numbers are taken the same way (docs/benchmarks.md, "How it is measured"):

* :func:`interleaved_times`: every configuration's step in the calling
  process, ``warmup`` untimed rounds, then ``repeats`` timed rounds in which
  every step runs once, the order rotated by one each round; a CUDA
  synchronisation before and after each timed call; wall-clock seconds per
  call (``time.perf_counter``).
* :func:`peak_memory`: one configuration alone in a fresh child process
  (``spawn``: of the caller's state only the environment, the working
  directory, ``sys.path`` and the torch thread count), one warm-up call,
  then the peak of one call above what was resident just before it, in
  bytes: CUDA ``max_memory_allocated`` after
  ``reset_peak_memory_stats``; CPU the peak resident set (``VmHWM`` of
  ``/proc/self/status``, reset to the current ``VmRSS`` by writing ``5`` to
  ``/proc/self/clear_refs``), with glibc told to hand every freed block of
  64 KiB or more back to the system so that the resident set follows the
  live tensors. Where ``clear_refs`` cannot be written (not Linux, or a
  locked-down kernel), the fallback is the growth of ``ru_maxrss``, which the
  warm-up call's peak may hide (the result says which method was used).
* :func:`summary`: min / median / max (and n) of a list of numbers, the
  median being what the tables show and the range what they bracket.

Imports torch alone (inside the functions that need it): runs on a machine
with only torch, timm and torchvision.
"""
import gc
import statistics
import sys
import time
import traceback
from typing import (
    Any,
    Callable,
    Dict,
    Hashable,
    List,
    NamedTuple,
    Optional,
    Sequence,
)

# glibc's M_MMAP_THRESHOLD (mallopt) and the threshold set: blocks of this
# size and larger are mmap-ed and unmapped when freed (no dynamic raising)
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 * 1024


def _device(device):
    """``device`` (str, torch.device or None) as a torch.device."""
    import torch
    return torch.device('cpu' if device is None else device)


def _sync(dev):
    if dev.type == 'cuda':
        import torch
        torch.cuda.synchronize(dev)


def interleaved_times(steps: Dict[Hashable, Callable[[], Any]],
                      warmup: int = 1, repeats: int = 5,
                      device=None) -> Dict[Hashable, List[float]]:
    """Wall-clock seconds of every step, the steps interleaved.

    Args:
        steps: ``{key: step}``, each step a callable without arguments
            doing one unit of work (its return value is dropped); the
            dict's order is the order of the first round.
        warmup: untimed rounds first (every step once per round, in the
            dict's order).
        repeats: timed rounds. Round ``r`` runs every step once, starting
            at the step ``r % len(steps)`` and wrapping around, so over
            ``len(steps)`` rounds every step holds every position once and
            a drift of the machine hits all steps alike.
        device: where the steps run (str, ``torch.device`` or None: CPU).
            On CUDA the device is synchronised before and after each timed
            call, so a call's time is its own kernels' and no one else's.

    Returns:
        ``{key: [seconds, ...]}``: ``repeats`` floats per key, in round
        order. ``gc.collect()`` runs once between warm-up and timing.
    """
    dev = _device(device)
    keys = list(steps)
    for _ in range(warmup):
        for k in keys:
            steps[k]()
    _sync(dev)
    gc.collect()
    times = {k: [] for k in keys}
    for r in range(repeats if keys else 0):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            _sync(dev)
            t0 = time.perf_counter()
            steps[k]()
            _sync(dev)
            times[k].append(time.perf_counter() - t0)
    return times


def summary(values: Sequence[float]) -> Dict[str, float]:
    """``dict(min=, median=, max=, n=)`` of ``values`` (non-empty), in the
    values' unit."""
    values = list(values)
    if not values:
        raise ValueError('summary of no values')
    return dict(min=min(values), median=statistics.median(values),
                max=max(values), n=len(values))


class PeakMemory(NamedTuple):
    """What :func:`peak_memory` measured.

    ``bytes``: the peak of the measured call above what was resident
    before it; ``method``: ``'cuda_max_allocated'``, ``'cpu_vmhwm'`` or
    ``'cpu_ru_maxrss'`` (the fallback); ``info``: what ``make_step``
    returned beside the step (None if only a step).
    """
    bytes: int
    method: str
    info: Any = None

    @property
    def mib(self) -> float:
        return self.bytes / 2**20


def _proc_kb(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise OSError(f'no {field} in /proc/self/status')


def _maxrss_bytes():
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == 'darwin' else r * 1024  # Linux: KiB


def release_freed_blocks():
    """Tell glibc (where it is the allocator) to mmap every block of
    ``MMAP_THRESHOLD`` bytes or more and unmap it when freed, as the
    environment variable ``MALLOC_MMAP_THRESHOLD_=65536`` would: otherwise
    freed blocks stay resident and a warm call's activations do not show
    in the resident set. True if it took effect."""
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


def peak_of_call(step: Callable[[], Any], device=None) -> PeakMemory:
    """In *this* process: one warm-up call of ``step`` (one-time
    allocations: workspaces, lazy state, optimizer buffers), then the peak
    memory of one more call above what was resident before it.
    :func:`peak_memory` runs this in a fresh child; call it directly only
    in a process that did nothing else (the CPU fallback's peak so far
    would hide the call's)."""
    dev = _device(device)
    step()
    _sync(dev)
    gc.collect()
    if dev.type == 'cuda':
        import torch
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        step()
        _sync(dev)
        return PeakMemory(torch.cuda.max_memory_allocated(dev) - base,
                          'cuda_max_allocated')
    try:  # reset the peak resident set to the current one (Linux >= 4.0)
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        base = _proc_kb('VmRSS')
    except OSError:
        base = None
    if base is not None:
        step()
        return PeakMemory(max(0, _proc_kb('VmHWM') - base) * 1024,
                          'cpu_vmhwm')
    base = _maxrss_bytes()  # the peak so far may hide the call's
    step()
    return PeakMemory(max(0, _maxrss_bytes() - base), 'cpu_ru_maxrss')


def _child(make_step, args, device, threads, conn):
    """The child of :func:`peak_memory`: build, measure, send back."""
    try:
        if _device(device).type == 'cpu':
            release_freed_blocks()
        import torch
        if threads:
            torch.set_num_threads(threads)
        out = make_step(*args)
        step, info = out if isinstance(out, tuple) else (out, None)
        conn.send(('ok', tuple(peak_of_call(step, device)[:2]) + (info, )))
    except BaseException:  # noqa: B902 -- reported by the parent
        conn.send(('error', traceback.format_exc()))
    finally:
        conn.close()


def peak_memory(make_step: Callable[..., Any], *args, device=None,
                threads: Optional[int] = None) -> PeakMemory:
    """Peak memory of one step, measured alone in a fresh child process.

    Args:
        make_step: a module-level function (the child imports it by name:
            a tool script's own function works, its ``main`` guarded by
            ``if __name__ == '__main__'``), called in the child as
            ``make_step(*args)``; builds the configuration on ``device`` and
            returns ``step`` (a callable without arguments) or
            ``(step, info)`` with ``info`` anything picklable, handed back.
        *args: picklable arguments of ``make_step``.
        device: where the step runs (str, ``torch.device`` or None: CPU).
        threads: torch CPU threads in the child (default: this process's
            ``torch.get_num_threads()``).

    Returns:
        :class:`PeakMemory`: ``bytes`` the peak of one call after one
        warm-up call, above what was resident before it (see the module
        docstring for CUDA / CPU), ``method``, ``info``.

    Raises:
        RuntimeError: the child failed (its traceback in the message) or
        died (killed for memory, say).
    """
    import multiprocessing as mp

    import torch
    if threads is None:
        threads = torch.get_num_threads()
    ctx = mp.get_context('spawn')
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child,
                       args=(make_step, args, str(_device(device)), threads,
                             send))
    proc.start()
    send.close()
    try:
        msg = recv.recv()
    except EOFError:
        msg = None
    finally:
        recv.close()
        proc.join()
    if msg is None:
        raise RuntimeError(f'the peak-memory child of {make_step.__name__} '
                           f'died (exit code {proc.exitcode})')
    if msg[0] == 'error':
        raise RuntimeError(f'the peak-memory child of {make_step.__name__} '
                           f'failed:\n{msg[1]}')
    return PeakMemory(*msg[1])


def device_name(device) -> str:
    """``device`` as the tables name it: the GPU's name on CUDA, else the
    device string."""
    dev = _device(device)
    if dev.type == 'cuda':
        import torch
        return torch.cuda.get_device_name(dev)
    return str(device)


__all__ = ['interleaved_times', 'peak_memory', 'peak_of_call', 'summary',
           'PeakMemory', 'release_freed_blocks', 'device_name',
           'MMAP_THRESHOLD']
