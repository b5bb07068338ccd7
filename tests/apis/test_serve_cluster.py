"""The service past one machine (issue 31): a two-node Ray cluster built
on this machine with Ray's own multi-node test facility
(``ray.cluster_utils.Cluster``), the bank's application with two replicas,
one on each node (each node has one CPU and each replica asks for one),
and the answers still right when one node is removed."""
import os
import time

import pytest
from ivpt_runs import ROOT
from test_serve import _free_port, _png, check_answer, predict

DEADLINE = 300  # seconds any one wait may take on a loaded 2-core machine


def _until(what, ready):
    start = time.monotonic()
    while not ready():
        assert time.monotonic() - start < DEADLINE, what
        time.sleep(0.5)


@pytest.mark.slow
def test_two_nodes_then_one_keep_answering(tmp_path, monkeypatch):
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from mmseg_ivpt.apis.bank import PromptBank
    from mmseg_ivpt.serving.app import ServeConfig, deploy
    from mmseg_ivpt.serving.demo import write_demo_bank

    bank_yaml = write_demo_bank(str(tmp_path / 'bank' / 'bank.yaml'))
    bank = PromptBank.from_yaml(bank_yaml)
    imgs = {t: _png(tmp_path / f'{t}.png', 48, 56, seed=k)
            for k, t in enumerate(bank.names)}
    # the nodes' workers import this checkout's package
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(
        [ROOT] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    cluster = Cluster(initialize_head=True,
                      head_node_args=dict(num_cpus=1,
                                          include_dashboard=False))
    try:
        worker = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, include_dashboard=False)
        port = _free_port()
        serve.start(proxy_location='HeadOnly',
                    http_options=dict(host='127.0.0.1', port=port))
        deploy(ServeConfig(bank=bank_yaml), replicas=2, replica_cpus=1)
        url = f'http://127.0.0.1:{port}'
        # both CPUs taken by the two replicas: one replica on each node
        assert len([n for n in ray.nodes() if n['Alive']]) == 2
        assert ray.available_resources().get('CPU', 0) == 0
        for task, img in imgs.items():
            check_answer(bank, task, img, *predict(url, task,
                                                   open(img, 'rb').read()))

        cluster.remove_node(worker)
        _until('the worker node gone',
               lambda: len([n for n in ray.nodes() if n['Alive']]) == 1)

        def answers():
            try:
                return all(predict(url, t, open(i, 'rb').read())[0] == 200
                           for t, i in imgs.items())
            except OSError:
                return False

        # the replica left on the head answers (Serve stops routing to the
        # lost one); then every request is answered right
        _until('answers after the node left', answers)
        for _ in range(2):
            for task, img in imgs.items():
                check_answer(bank, task, img,
                             *predict(url, task, open(img, 'rb').read()))
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            cluster.shutdown()
