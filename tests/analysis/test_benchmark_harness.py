"""The benchmark harness every tool in tools/analysis/ measures with
(mmseg_ivpt.analysis.benchmark): the interleaved loop's call order and
counts, the peak memory of a step alone in a child process (a known
allocation shows, what was resident before the measured call does not), and
the summary. No assertion on a time."""
import pytest
import torch

from mmseg_ivpt.analysis.benchmark import (
    PeakMemory,
    interleaved_times,
    peak_memory,
    peak_of_call,
    summary,
)

MIB = 2**20


# ------------------------------------------------- steps built in children
# module-level: peak_memory's child imports them by name
def make_alloc(mib, device):
    """A step that allocates (and writes) ``mib`` MiB of float32 and drops
    it; ``(step, info)``."""
    def step():
        x = torch.ones(mib * MIB // 4, device=device)
        return x.sum()
    return step, dict(mib=mib)


def make_resident_then_nothing(mib, device):
    """``mib`` MiB held from the build, and a step whose first call makes a
    lazy ``mib`` MiB buffer it keeps: neither is the measured call's."""
    held = torch.ones(mib * MIB // 4, device=device)
    lazy = []

    def step():
        if not lazy:
            lazy.append(torch.ones(mib * MIB // 4, device=device))
        return held[0] + lazy[0][0]
    return step


def make_failing():
    raise ValueError('no such model')


# ----------------------------------------------------------------- timing
def test_interleaved_calls_each_step_warmup_plus_repeats_rotated():
    calls = []
    steps = {k: (lambda k=k: calls.append(k)) for k in 'abc'}
    times = interleaved_times(steps, warmup=2, repeats=4)
    assert {k: calls.count(k) for k in 'abc'} == dict(a=6, b=6, c=6)
    warm, timed = calls[:6], calls[6:]
    assert warm == list('abcabc')  # warm-up rounds in the dict's order
    # round r starts at step r % 3 and wraps around
    assert [''.join(timed[i:i + 3]) for i in range(0, 12, 3)] == [
        'abc', 'bca', 'cab', 'abc']
    assert list(times) == list('abc')
    for k, t in times.items():
        assert len(t) == 4 and all(isinstance(s, float) and s >= 0
                                   for s in t)


def test_interleaved_every_step_every_position_and_any_keys():
    calls = []
    keys = [(1, 'x'), (1, 'y'), (4, 'x'), (4, 'y'), (16, 'x')]
    steps = {k: (lambda k=k: calls.append(k)) for k in keys}
    times = interleaved_times(steps, warmup=0, repeats=len(keys))
    rounds = [calls[i:i + len(keys)] for i in range(0, len(calls),
                                                     len(keys))]
    for k in keys:  # each key in each position once over n rounds
        assert sorted(r.index(k) for r in rounds) == list(range(len(keys)))
    assert all(len(times[k]) == len(keys) for k in keys)
    assert interleaved_times({}, warmup=1, repeats=3) == {}


def test_summary():
    assert summary([3.0, 1.0, 10.0, 2.0]) == dict(min=1.0, median=2.5,
                                                  max=10.0, n=4)
    assert summary([7]) == dict(min=7, median=7, max=7, n=1)
    assert summary(iter([5, 1, 3])) == dict(min=1, median=3, max=5, n=3)
    with pytest.raises(ValueError):
        summary([])


# ----------------------------------------------------------------- memory
def _cpu_method_or_skip(peak):
    if peak.method != 'cpu_vmhwm':  # the ru_maxrss fallback cannot tell
        pytest.skip(f'/proc/self/clear_refs not writable ({peak.method})')


@pytest.mark.slow
def test_peak_memory_cpu_sees_a_known_allocation_in_a_child():
    peak = peak_memory(make_alloc, 64, 'cpu', device='cpu', threads=1)
    assert isinstance(peak, PeakMemory)
    assert peak.info == dict(mib=64)  # handed back from the child
    _cpu_method_or_skip(peak)
    # the kernel's resident-set counters lag by up to a few hundred KiB
    assert 60 * MIB <= peak.bytes < 96 * MIB, peak
    assert peak.mib == peak.bytes / MIB


@pytest.mark.slow
def test_peak_memory_cpu_excludes_the_build_and_the_warm_up():
    peak = peak_memory(make_resident_then_nothing, 128, 'cpu', device='cpu')
    assert peak.info is None
    _cpu_method_or_skip(peak)
    assert peak.bytes < 16 * MIB, peak


@pytest.mark.slow
def test_peak_memory_child_failure_is_reported():
    with pytest.raises(RuntimeError, match='no such model'):
        peak_memory(make_failing, device='cpu')


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA')
def test_peak_of_call_cuda():
    step, _ = make_alloc(64, 'cuda')
    assert peak_of_call(step, 'cuda').bytes >= 64 * MIB
    peak = peak_memory(make_resident_then_nothing, 128, 'cuda',
                       device='cuda')
    assert peak.method == 'cuda_max_allocated'
    assert peak.bytes < MIB, peak
    peak = peak_memory(make_alloc, 64, 'cuda', device='cuda')
    assert 64 * MIB <= peak.bytes < 65 * MIB, peak
