"""mmengine checkpoints load with weights_only=True through an allow-list,
on every path a user meets; other pickles are refused."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint

import mmseg_ivpt  # noqa: F401  (installs the safe loader)
from mmseg_ivpt.utils import UnsafeCheckpointError


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 1)

    def forward(self, inputs, labels, mode='tensor'):
        out = self.fc(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=(out.squeeze(1) - torch.stack(labels)).pow(2)
                        .mean())
        return [dict(pred=o, label=y) for o, y in zip(out, labels)]


class ToyData(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.full((2, ), float(i)),
                    labels=torch.tensor(float(i % 2)))


class ToyMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.extend(float(s['pred']) for s in data_samples)

    def compute_metrics(self, results):
        return dict(score=np.float64(np.mean(results)))  # a numpy scalar


def _runner(work_dir, **kw):
    loader = dict(dataset=ToyData(), sampler=dict(type='DefaultSampler',
                                                  shuffle=False),
                  batch_size=4, num_workers=0)
    return Runner(
        model=ToyModel(), work_dir=work_dir, train_dataloader=loader,
        val_dataloader=loader, test_dataloader=loader,
        val_evaluator=dict(type=ToyMetric),
        test_evaluator=dict(type=ToyMetric),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=dict(type='PolyLR', eta_min=0, power=1.,
                             by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=6, val_interval=3),
        val_cfg=dict(), test_cfg=dict(),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=3,
                                           by_epoch=False, save_best='score',
                                           rule='greater')),
        default_scope='mmengine', experiment_name=os.path.basename(work_dir),
        **kw)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('runner'))
    runner = _runner(work_dir)
    runner.train()
    ckpt = os.path.join(work_dir, 'iter_3.pth')
    assert os.path.isfile(ckpt)
    return work_dir, ckpt, runner.model.state_dict()


def test_plain_weights_only_load_fails_without_allow_list(trained):
    """The problem is real: torch's default refuses mmengine's file."""
    with pytest.raises(pickle.UnpicklingError):
        torch.load(trained[1], weights_only=True)


def test_test_path_load_checkpoint(trained):
    work_dir, _, final = trained
    last = os.path.join(work_dir, 'iter_6.pth')
    # tools/test.py: Runner(load_from=...).test() -> Runner.load_checkpoint
    runner = _runner(work_dir, load_from=last)
    metrics = runner.test()
    assert 'score' in metrics
    for k, v in final.items():
        assert torch.equal(runner.model.state_dict()[k], v)
    # init_model / load_from use mmengine.runner.load_checkpoint
    model = ToyModel()
    ckpt = load_checkpoint(model, last, map_location='cpu')
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)
    assert torch.equal(model.fc.weight, final['fc.weight'])


def test_resume_continues_from_saved_iteration(trained, tmp_path):
    """--resume: from iter 3 to 6 gives the uninterrupted run's weights."""
    _, ckpt, final = trained
    runner = _runner(str(tmp_path), resume=True, load_from=ckpt)
    runner.train()
    assert runner.iter == 6
    for k, v in final.items():
        torch.testing.assert_close(runner.model.state_dict()[k], v,
                                   rtol=0, atol=0)


def test_foreign_pickle_is_refused(tmp_path):
    marker = tmp_path / 'pwned'

    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {marker}', ))

    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={'fc.weight': torch.zeros(1, 2)},
                    meta=dict(x=Evil())), path)
    with pytest.raises(UnsafeCheckpointError,
                       match=r'refused to load .*evil.pth.*allow-list'):
        load_checkpoint(ToyModel(), path, map_location='cpu')
    assert not marker.exists()


def test_getattr_is_allowed_only_for_history_buffer_statistics(tmp_path):
    """mmengine pickles getattr(HistoryBuffer, 'mean'); any other getattr
    look-up is refused."""

    class Sneaky:
        def __reduce__(self):
            return (getattr, (HistoryBuffer, 'update'))

    path = str(tmp_path / 'sneaky.pth')
    torch.save(dict(meta=dict(x=Sneaky())), path)
    with pytest.raises(UnsafeCheckpointError, match='sneaky.pth'):
        load_checkpoint(ToyModel(), path, map_location='cpu')
