"""tools/serve.py as a user runs it: the service started once for the
module (a subprocess from another folder, a local Ray, on a free loopback
port), real HTTP requests from several client threads at once. Every
answer must equal PromptBank.predict of the same image computed here, in
the test process (labels and masks exactly, scores to 1e-5), whatever
else shared its batch; each bad input is its 4xx and the service answers
correctly after it; the task endpoints refuse what they must; a killed
replica is restarted by Ray with the tasks of the moment."""
import base64
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
import urllib3
from ivpt_runs import ROOT, free_ports
from PIL import Image

pytestmark = pytest.mark.slow  # one Ray and one service for the module
TOKEN = 'test-token-' + uuid.uuid4().hex
MAX_UPLOAD = 100 * 1024  # bytes, as --max-upload-mb below
MAX_PIXELS = 100_000
DEADLINE = 300  # s: the service's start and a replica's restart, at most


# ------------------------------------------------------------- client
def http(url, body=None, headers=None, method=None):
    """(status, content type, body bytes) of one request."""
    req = urllib.request.Request(url, data=body, headers=headers or {},
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers.get('Content-Type'), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get('Content-Type'), e.read()


def multipart(fields):
    """A multipart/form-data body of ``fields`` (name -> str or (file
    name, bytes)) and its content type, encoded by urllib3 (what
    ``requests`` sends), not by the service's own reader."""
    return urllib3.encode_multipart_formdata(fields)


def predict(url, task, data, how='form', fmt=None):
    if how == 'form':
        body, ctype = multipart({'task': task, 'image': ('x.png', data)})
    else:
        body = json.dumps(dict(task=task, image_b64=base64.b64encode(
            data).decode())).encode()
        ctype = 'application/json'
    q = f'?format={fmt}' if fmt else ''
    return http(f'{url}/v1/predict{q}', body, {'Content-Type': ctype})


def _png(path, h, w, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(path)
    return str(path)


def _free_port():
    return free_ports()[0]


# ------------------------------------------------------------ service
@pytest.fixture(scope='module')
def service(tmp_path_factory):
    """tools/serve.py --demo: it writes a bank of three random tiny tasks
    (eurosat, cub: classification; shapes: segmentation) and serves it;
    the same bank built here for the expected answers; images of several
    sizes."""
    tmp = tmp_path_factory.mktemp('serve')
    bank_yaml = tmp / 'bank' / 'bank.yaml'
    bank_yaml.parent.mkdir()  # the task root
    cwd = tmp / 'elsewhere'
    cwd.mkdir()
    port = _free_port()
    log = open(tmp / 'serve.log', 'w')
    env = dict(os.environ, IVPT_SERVE_TOKEN=TOKEN, PYTHONUNBUFFERED='1')
    env.pop('PYTHONPATH', None)
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'tools', 'serve.py'),
         str(bank_yaml), '--demo', '--port', str(port),
         '--max-batch-size', '8', '--batch-wait-ms', '50',
         '--max-upload-mb', str(MAX_UPLOAD / 2**20), '--max-pixels',
         str(MAX_PIXELS), '--task-root', str(tmp / 'bank'), '--num-cpus',
         '2'], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f'http://127.0.0.1:{port}'

    def tail():
        log.flush()
        return (tmp / 'serve.log').read_text()[-6000:]

    def wait(what, ready):
        start = time.monotonic()
        while not ready():
            assert proc.poll() is None, tail()
            assert time.monotonic() - start < DEADLINE, (what, tail())
            time.sleep(0.5)

    def healthy():
        try:
            return http(f'{url}/healthz')[0] == 200
        except OSError:  # not listening yet
            return False

    try:
        # meanwhile, the expected answers: the bank the service wrote
        # (--demo), built in this process
        from mmseg_ivpt.apis.bank import PromptBank
        wait('the bank file', bank_yaml.exists)
        bank = PromptBank.from_yaml(str(bank_yaml))
        imgs = {t: [_png(tmp / f'{t}{i}.png', 40 + 8 * i, 64 - 6 * i,
                         seed=10 * k + i) for i in range(3)]
                for k, t in enumerate(bank.names)}
        wait('/healthz', healthy)
        yield dict(url=url, bank=bank, imgs=imgs, proc=proc, tail=tail,
                   root=tmp / 'bank')
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        log.close()


def expect(bank, task, path):
    """What the service must answer for ``path``: PromptBank.predict here
    (the same bank file), as JSON fields and the mask."""
    pred = bank.predict([path], [task])[0]
    info = bank.task_info(task)
    if info.kind == 'classification':
        return info, pred, None
    return info, pred, bank.label_mask(task, pred)


def check_answer(bank, task, path, status, ctype, body, fmt=None):
    what = f'{task} {path}: {status} {body[:300]!r}'
    assert status == 200, what
    info, pred, mask = expect(bank, task, path)
    if fmt == 'png':
        assert ctype == 'image/png', what
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(
            body))), mask, err_msg=what)
        return
    got = json.loads(body)
    assert got['task'] == task and got['kind'] == info.kind, what
    if info.kind == 'classification':
        label = int(pred.pred_label)
        assert got['pred_label'] == label, what
        assert got['pred_class'] == info.classes[label], what
        assert abs(got['pred_score'] - float(pred.pred_score[label])) \
            <= 1e-5, what
    else:
        png = base64.b64decode(got['mask'])
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(
            png))), mask, err_msg=what)
        assert (got['height'], got['width']) == mask.shape, what
        present = sorted(int(c) for c in np.unique(mask - info.mask_offset))
        assert got['classes_present'] == [info.classes[c] for c in present]


def _metric(url, endpoint, task, code):
    text = http(f'{url}/metrics')[2].decode()
    key = f'endpoint="{endpoint}",task="{task}",code="{code}"}} '
    return sum(int(line.rsplit(' ', 1)[1]) for line in text.splitlines()
               if key in line)


# -------------------------------------------------------------- tests
def test_clients_in_threads_get_what_the_bank_predicts(service):
    """4 threads x 9 requests, the three tasks mixed, multipart and JSON,
    JSON and PNG answers: each equals PromptBank.predict of its image."""
    url, bank, imgs = service['url'], service['bank'], service['imgs']
    before = {t: _metric(url, 'predict', t, 200) for t in bank.names}
    jobs = [(t, p, how, fmt) for t in bank.names for p in imgs[t]
            for how, fmt in [('form', None)]]
    jobs += [('shapes', imgs['shapes'][1], 'json', 'png'),
             ('eurosat', imgs['eurosat'][2], 'json', None),
             ('cub', imgs['cub'][0], 'json', None)]
    results, errors = [], []

    def client(k):
        try:
            for i, (t, p, how, fmt) in enumerate(jobs):
                if i % 4 == k % 4 or i % 3 == k % 3:  # overlapping subsets
                    data = open(p, 'rb').read()
                    results.append((t, p, fmt, predict(url, t, data, how,
                                                       fmt)))
        except BaseException as e:  # noqa: B036 -- reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k, ))
               for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(600)
    assert not errors, errors
    assert not any(th.is_alive() for th in threads)
    assert len(results) >= 4 * 6
    for t, p, fmt, (status, ctype, body) in results:
        check_answer(bank, t, p, status, ctype, body, fmt)
    sent = {t: sum(1 for r in results if r[0] == t) for t in bank.names}
    assert {t: _metric(url, 'predict', t, 200) - before[t]
            for t in bank.names} == sent


def test_tasks_and_health(service):
    url, bank = service['url'], service['bank']
    status, _, body = http(f'{url}/v1/tasks')
    assert status == 200
    got = {t['name']: t for t in json.loads(body)}
    assert list(got) == bank.names
    for name in bank.names:
        info = bank.task_info(name)
        assert got[name]['kind'] == info.kind
        assert got[name]['classes'] == list(info.classes)
        assert tuple(got[name]['input_size']) == info.input_size
    assert got['shapes']['input_size'] == [64, 64]
    assert got['cub']['input_size'] == [32, 32]
    status, _, body = http(f'{url}/healthz')
    assert status == 200 and json.loads(body)['tasks'] == 3
    text = http(f'{url}/metrics')[2].decode()
    assert 'ivpt_serve_batch_size_count' in text
    assert 'ivpt_serve_request_seconds_bucket' in text


def test_each_bad_input_is_its_4xx_and_the_next_request_is_answered(
        service, tmp_path):
    url, bank, imgs = service['url'], service['bank'], service['imgs']
    good = imgs['shapes'][0]
    png = open(good, 'rb').read()
    big = _png(tmp_path / 'big.png', 200, 200, 3)  # 120 KB of noise
    assert os.path.getsize(big) > MAX_UPLOAD
    bomb = tmp_path / 'bomb.png'  # small file, 400 x 400 pixels
    Image.new('RGB', (400, 400)).save(bomb)
    assert os.path.getsize(bomb) < 4096
    form, ctype = multipart({'task': 'cub'})
    two, ctype2 = multipart({'task': 'cub', 'image': ('a.png', png),
                             'extra': 'x'})
    cases = [
        (predict(url, 'cars', png), 404, "unknown task 'cars'"),
        (predict(url, 'cub', b'no image here'), 415, 'not an image'),
        (predict(url, 'cub', png[:120]), 415, 'does not decode'),
        (predict(url, 'cub', open(big, 'rb').read()), 413,
         f'the limit is {MAX_UPLOAD}'),
        (predict(url, 'cub', open(bomb, 'rb').read()), 413,
         f'400 x 400 = 160000 pixels, more than the limit of {MAX_PIXELS}'),
        (predict(url, 'cub', png, fmt='png'), 400,
         "'cub' is a classification task"),
        (predict(url, 'cub', png, fmt='gif'), 400, "format='gif'"),
        (http(f'{url}/v1/predict', form, {'Content-Type': ctype}), 400,
         "missing ['image']"),
        (http(f'{url}/v1/predict', two, {'Content-Type': ctype2}), 400,
         "unknown ['extra']"),
        (http(f'{url}/v1/predict', b'{"image_b64": "AAAA"}',
              {'Content-Type': 'application/json'}), 400, "['task']"),
        (http(f'{url}/v1/predict', b'{"task": "cub", "image_b64": "@@"}',
              {'Content-Type': 'application/json'}), 400, 'not base64'),
        (http(f'{url}/v1/predict', b'{"task": ', {'Content-Type':
                                                  'application/json'}),
         400, 'not JSON'),
        (http(f'{url}/v1/predict', png, {'Content-Type': 'image/png'}), 415,
         'multipart/form-data'),
        (http(f'{url}/v1/predict', b'x' * (MAX_UPLOAD * 2),
              {'Content-Type': 'application/json'}), 413, 'the body is'),
        (http(f'{url}/v1/nothing'), 404, 'Not Found'),
    ]
    for (status, ctype, body), want_status, want in cases:
        what = f'{want}: {status} {body[:300]!r}'
        assert status == want_status, what
        assert ctype == 'application/json', what
        assert want in json.loads(body)['error'], what
        check_answer(bank, 'shapes', good, *predict(url, 'shapes', png))


def test_adding_and_removing_tasks(service):
    url, bank, imgs = service['url'], service['bank'], service['imgs']
    root = service['root']
    img = imgs['eurosat'][1]
    spec = json.dumps(dict(name='eurosat2', config='eurosat.py',
                           checkpoint='eurosat.pth')).encode()
    auth = {'Authorization': f'Bearer {TOKEN}'}
    tasks = f'{url}/v1/tasks'
    outside = root.parent / 'outside.py'
    outside.write_text('x = 1\n')

    def add(name, config, checkpoint='eurosat.pth'):
        return http(tasks, json.dumps(dict(
            name=name, config=config, checkpoint=checkpoint)).encode(),
            auth, 'POST')

    refused = [
        (http(tasks, spec, method='POST'), 401, 'Authorization: Bearer'),
        (http(tasks, spec, {'Authorization': 'Bearer nope'}, 'POST'), 403,
         'wrong token'),
        (add('x', '../outside.py'), 403,
         "config '../outside.py' is outside the task root"),
        (add('x', str(outside)), 403, 'outside the task root'),
        (add('x', 'eurosat.py', 'none.pth'), 400,
         "checkpoint 'none.pth': no such file"),
        (add('cub', 'eurosat.py'), 409, "a task named 'cub' exists"),
        (add('a/b', 'eurosat.py'), 400, "name 'a/b'"),
        (http(tasks, b'{"name": "x"}', auth, 'POST'), 400,
         "['config', 'checkpoint']"),
        (http(f'{tasks}/cub', method='DELETE'), 401, 'Bearer'),
        (http(f'{tasks}/cub', None, {'Authorization': 'Bearer x'},
              'DELETE'), 403, 'wrong token'),
        (http(f'{tasks}/cars', None, auth, 'DELETE'), 404,
         "unknown task 'cars'"),
    ]
    for (status, _, body), want_status, want in refused:
        what = f'{want}: {status} {body[:300]!r}'
        assert status == want_status, what
        assert want in json.loads(body)['error'], what
    assert [t['name'] for t in json.loads(http(tasks)[2])] == bank.names

    status, _, body = http(tasks, spec, auth, 'POST')
    assert status == 201, body
    # the same files as eurosat: the same answers
    got = predict(url, 'eurosat2', open(img, 'rb').read())
    assert got[0] == 200, got
    check_answer(bank, 'eurosat', img, *got[:2], json.dumps(dict(
        json.loads(got[2]), task='eurosat')).encode())
    assert 'eurosat2' in [t['name'] for t in json.loads(http(tasks)[2])]
    status, _, body = http(f'{tasks}/eurosat2', None, auth, 'DELETE')
    assert status == 200 and json.loads(body) == {'removed': 'eurosat2'}
    status, _, body = predict(url, 'eurosat2', open(img, 'rb').read())
    assert status == 404 and "unknown task 'eurosat2'" in json.loads(
        body)['error']
    assert http(f'{tasks}/eurosat2', None, auth, 'DELETE')[0] == 404


def test_a_killed_replica_is_restarted_with_the_tasks_of_the_moment(
        service):
    """SIGKILL of the replica's process: Ray starts another, which builds
    the bank and takes the task added over HTTP before it."""
    import psutil
    url, bank, imgs = service['url'], service['bank'], service['imgs']
    auth = {'Authorization': f'Bearer {TOKEN}'}
    spec = json.dumps(dict(name='kept', config='shapes.py',
                           checkpoint='shapes.pth')).encode()
    assert http(f'{url}/v1/tasks', spec, auth, 'POST')[0] == 201
    old = json.loads(http(f'{url}/healthz')[2])['replica']
    replicas = [p for p in psutil.Process(service['proc'].pid).children(
        recursive=True) if 'ServeReplica' in ' '.join(p.cmdline())]
    assert len(replicas) == 1, replicas
    replicas[0].kill()
    replicas[0].wait(60)
    img = imgs['shapes'][2]
    data = open(img, 'rb').read()
    start, answer = time.monotonic(), None
    while time.monotonic() - start < DEADLINE:
        assert service['proc'].poll() is None, service['tail']()
        try:
            answer = predict(url, 'kept', data)
            if answer[0] == 200:
                break
        except OSError:
            pass
        time.sleep(1)
    assert answer and answer[0] == 200, (answer, service['tail']())
    check_answer(bank, 'shapes', img, *answer[:2], json.dumps(dict(
        json.loads(answer[2]), task='shapes')).encode())
    assert json.loads(http(f'{url}/healthz')[2])['replica'] != old
    check_answer(bank, 'cub', imgs['cub'][1],
                 *predict(url, 'cub', open(imgs['cub'][1], 'rb').read()))


def test_bad_arguments_are_one_line_errors_before_ray(tmp_path, capsys):
    """A bad argument (as a user runs it) and a bad bank file (in this
    process, whose imports are done): one line naming it, no Ray."""
    from ivpt_runs import run_tool

    from tools.serve import main
    bank = tmp_path / 'bank.yaml'
    bank.write_text('encoder: vit.pth\ntasks: [{name: a}]\nmodel: x\n')
    res = run_tool('serve.py', bank, '--replicas', '0', cwd=tmp_path)
    assert res.returncode == 2 and 'error: --replicas 0: allowed >= 1' \
        in res.stderr
    with pytest.raises(SystemExit) as e:
        main([str(bank), '--port', '1'])
    assert str(e.value).startswith(f'error: {bank}: missing []')
    assert "unknown ['model']" in str(e.value)
    assert 'ray' not in capsys.readouterr().err.lower()
    if 'ray' in sys.modules:
        assert not sys.modules['ray'].is_initialized()


def test_a_failing_batch_is_answered_item_by_item(service, tmp_path):
    """What a replica runs for a batch (in this process, on the bank built
    here): a batch that PromptBank.predict refuses (a task removed while
    its request waited; an image it cannot read) is run again item by
    item; only those items get their errors (404, 500), the others their
    own predictions."""
    from mmcv import imread

    from mmseg_ivpt.apis.bank import BankError
    from mmseg_ivpt.serving.app import run_batch
    bank, imgs = service['bank'], service['imgs']
    items = [('cub', imread(imgs['cub'][0]), 'json'),
             ('gone', imread(imgs['cub'][1]), 'json'),  # removed meanwhile
             ('shapes', imread(imgs['shapes'][1]), 'png'),
             ('eurosat', str(tmp_path / 'none.png'), 'json')]
    with pytest.raises(BankError, match="unknown task 'gone'"):
        bank.predict([i[1] for i in items], [i[0] for i in items])
    got = run_batch(bank, items)
    assert [g[0] for g in got] == [200, 404, 200, 500], got
    assert got[1][1] == "task 'gone' was removed while the request waited"
    assert got[3][1].startswith("task 'eurosat': prediction failed: ")
    check_answer(bank, 'cub', imgs['cub'][0], 200, 'application/json',
                 json.dumps(got[0][1]).encode())
    check_answer(bank, 'shapes', imgs['shapes'][1], 200, 'image/png',
                 got[2][1], fmt='png')
