"""The prompt bank behind HTTP on Ray Serve (docs/serving.md).

:class:`BankServer` is a Ray Serve deployment with a FastAPI ingress. Each
replica holds one :class:`~mmseg_ivpt.apis.bank.PromptBank`. A prediction
request is checked first (:mod:`.inputs`: size, pixels, the image, the
task); only then does it join ``serve.batch``'s queue, so a bad request
never reaches a batch. The requests of any tasks that arrive within the
wait window go through **one** :meth:`PromptBank.predict` call (the mux);
each is answered with its own prediction. If that call fails, each
request of the batch is run alone, and only the one that fails gets an
error.

Adding and removing tasks (bearer token; paths under the task root) is
recorded in :class:`TaskTable`, a Ray actor the driver owns: the replica
that takes the request changes its bank at once, the others when they next
look (every ``sync_s`` seconds, on their next request), and a replica Ray
restarts comes back with the tasks of the moment.
"""
import asyncio
import base64
import hashlib
import hmac
import logging
import os
import re
import time
from typing import Dict, NamedTuple, Optional

import ray
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from ray import serve
from starlette.exceptions import HTTPException

from ..apis.bank import BankError, PromptBank, read_bank_yaml
from ..apis.prediction import label_mask, mask_png, prediction_json
from ..models import CheckpointMismatchError
from .inputs import (
    Limits,
    RequestError,
    check_length,
    decode_image,
    json_fields,
    read_predict_request,
)
from .metrics import Metrics

logger = logging.getLogger('ray.serve')
APP_NAME = 'prompt_bank'
#: the environment variable holding the bearer token, unless named
TOKEN_ENV = 'IVPT_SERVE_TOKEN'
TASK_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$')
ADD_FIELDS = ('name', 'config', 'checkpoint')

api = FastAPI(title='mmseg_ivpt prompt bank', docs_url=None,
              redoc_url=None, openapi_url=None)


@api.exception_handler(HTTPException)
async def _http_error(request, exc):  # FastAPI's own 404 / 405 as JSON
    return JSONResponse({'error': str(exc.detail)}, exc.status_code)


class ServeConfig(NamedTuple):
    """What every replica is built with."""

    #: the bank YAML (absolute path; the tasks' files as it names them)
    bank: str
    device: Optional[str] = None
    mode: Optional[str] = None
    max_batch_size: int = 16
    batch_wait_s: float = 0.01
    limits: Limits = Limits()
    #: sha256 (hex) of the bearer token; None: add / remove are off
    token_sha256: Optional[str] = None
    #: the folder added tasks' files must resolve under; None: adding off
    task_root: Optional[str] = None
    #: how often a replica looks for tasks added / removed elsewhere
    sync_s: float = 1.0


def token_digest(token: Optional[str]) -> Optional[str]:
    """What the replicas keep of the token (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest() if token else None


@ray.remote(num_cpus=0)
class TaskTable:
    """The tasks the service has: the bank file's (spec None) and those
    added since (their spec), with a version that every change bumps."""

    def __init__(self, names):
        self._tasks = {n: None for n in names}
        self._version = 0

    def get(self):
        return self._version, dict(self._tasks)

    def add(self, spec: dict) -> Optional[str]:
        if spec['name'] in self._tasks:
            return f'a task named {spec["name"]!r} exists'
        self._tasks[spec['name']] = dict(spec)
        self._version += 1
        return None

    def remove(self, name: str) -> Optional[str]:
        if name not in self._tasks:
            return 'unknown'
        if len(self._tasks) == 1:
            return f'{name!r} is the last task; the service needs one'
        del self._tasks[name]
        self._version += 1
        return None


def _json(status: int, doc) -> JSONResponse:
    return JSONResponse(doc, status)


def _error(e: RequestError) -> JSONResponse:
    headers = {'WWW-Authenticate': 'Bearer'} if e.status == 401 else None
    return JSONResponse({'error': e.message}, e.status, headers=headers)


def run_batch(bank: PromptBank, items) -> list:
    """(status, JSON / PNG / message) of each item (task, image, format)
    of a batch: one call of the bank for all of them; if it fails, each
    alone, so that only the items that fail get errors."""
    if len(items) > 1:
        try:
            preds = bank.predict([i[1] for i in items],
                                 [i[0] for i in items])
        except Exception as e:  # noqa: BLE001 -- each alone below
            logger.warning('a batch of %d failed (%s); each request alone',
                           len(items), e)
            return [run_batch(bank, [i])[0] for i in items]
        return [answer(bank, i, p) for i, p in zip(items, preds)]
    name = items[0][0]
    try:
        pred = bank.predict([items[0][1]], [name])[0]
    except BankError as e:
        if name not in bank.names:
            return [(404, f'task {name!r} was removed while the request '
                     f'waited')]
        return [(422, f'task {name!r}: {e}')]
    except Exception as e:  # noqa: BLE001 -- the request's own error
        logger.exception('prediction of task %r failed', name)
        return [(500, f'task {name!r}: prediction failed: '
                 f'{type(e).__name__}: {e}')]
    return [answer(bank, items[0], pred)]


def answer(bank: PromptBank, item, pred):
    """(200, the prediction's JSON, or the mask's PNG for format png), or
    404 if the task left the bank meanwhile."""
    name, _, fmt = item
    try:
        info = bank.task_info(name)
    except BankError:
        return 404, f'task {name!r} was removed while the request waited'
    if info.kind != 'segmentation':
        return 200, prediction_json(info, pred)
    png = mask_png(label_mask(info, pred))
    if fmt == 'png':
        return 200, png
    return 200, prediction_json(info, pred,
                                mask=base64.b64encode(png).decode())


@serve.deployment
@serve.ingress(api)
class BankServer:
    """One replica: a bank, the batch queue, the HTTP endpoints."""

    def __init__(self, config: ServeConfig, table):
        self.cfg, self.table = config, table
        self.bank = PromptBank.from_yaml(config.bank, device=config.device,
                                         mode=config.mode)
        #: name -> spec (None: from the bank file) of the tasks it holds
        self.applied: Dict[str, Optional[dict]] = {
            n: None for n in self.bank.names}
        self.version, self.synced_at = -1, 0.0
        self.edit = asyncio.Lock()
        try:
            self.replica = serve.get_replica_context().replica_id.unique_id
        except Exception:  # noqa: BLE001 -- outside Serve (a unit test)
            self.replica = str(os.getpid())
        self.metrics = Metrics(self.replica)
        self._batch.set_max_batch_size(config.max_batch_size)
        self._batch.set_batch_wait_timeout_s(config.batch_wait_s)
        # the tasks of the moment, before the first request
        self._apply(*ray.get(table.get.remote()))

    # ---------------------------------------------------------- predict
    @api.post('/v1/predict')
    async def predict(self, request: Request):
        t0, task, status = time.perf_counter(), '-', 500
        try:
            await self._sync()
            fmt = request.query_params.get('format', 'json')
            if fmt not in ('json', 'png'):
                raise RequestError(400, f'format={fmt!r}; allowed: json, '
                                   f'png')
            limits = self.cfg.limits
            check_length(request.headers.get('content-length'), limits)
            body = await request.body()
            name, data = read_predict_request(
                body, request.headers.get('content-type', ''), limits)
            info = self._info(name)
            task = name
            if fmt == 'png' and info.kind != 'segmentation':
                raise RequestError(400, f'format=png: {name!r} is a '
                                   f'{info.kind} task; only a segmentation '
                                   f'task has a mask')
            img = await asyncio.to_thread(decode_image, data, limits)
            status, payload = await self._batch((name, img, fmt))
            if status != 200:
                raise RequestError(status, payload)
            return (Response(payload, media_type='image/png')
                    if fmt == 'png' else _json(200, payload))
        except RequestError as e:
            status = e.status
            return _error(e)
        finally:
            self.metrics.request('predict', task, status,
                                 time.perf_counter() - t0)

    def _info(self, name: str):
        try:
            return self.bank.task_info(name)
        except BankError:
            raise RequestError(404, f'unknown task {name!r}; the service '
                               f'has {self.bank.names}') from None

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def _batch(self, items):
        self.metrics.batch(len(items))
        return await asyncio.to_thread(run_batch, self.bank, items)

    # ------------------------------------------------------ the service
    @api.get('/healthz')
    async def healthz(self):
        return {'status': 'ok', 'tasks': len(self.bank.names),
                'replica': self.replica}

    @api.get('/metrics')
    async def metrics(self):
        return Response(self.metrics.text(),
                        media_type='text/plain; version=0.0.4')

    @api.get('/v1/tasks')
    async def tasks(self):
        await self._sync()
        out = []
        for name in self.bank.names:
            try:
                info = self.bank.task_info(name)
            except BankError:  # removed meanwhile
                continue
            out.append(dict(name=name, kind=info.kind,
                            classes=list(info.classes or []) or None,
                            input_size=list(info.input_size or []) or None))
        return out

    @api.post('/v1/tasks')
    async def add_task(self, request: Request):
        status, name = 500, '-'
        try:
            self._authorize(request)
            check_length(request.headers.get('content-length'),
                         self.cfg.limits)
            spec = self._add_spec(await request.body())
            name = spec['name']
            await self._sync(force=True)
            async with self.edit:
                if name in self.bank.names:
                    raise RequestError(409, f'a task named {name!r} exists')
                try:
                    await asyncio.to_thread(self.bank.add_task, **spec)
                except (BankError, CheckpointMismatchError, ValueError,
                        TypeError, FileNotFoundError, KeyError,
                        SyntaxError) as e:
                    raise RequestError(400, f'task {name!r}: {e}') from None
                refused = await self.table.add.remote(spec)
                if refused:  # another replica added it meanwhile
                    await asyncio.to_thread(self.bank.remove_task, name)
                    raise RequestError(409, refused)
                self.applied[name] = spec
            info = self.bank.task_info(name)
            status = 201
            return _json(201, dict(name=name, kind=info.kind,
                                   classes=info.classes,
                                   input_size=info.input_size))
        except RequestError as e:
            status = e.status
            return _error(e)
        finally:
            self.metrics.request('add_task', '-', status, 0.0)

    @api.delete('/v1/tasks/{name}')
    async def remove_task(self, name: str, request: Request):
        status = 500
        try:
            self._authorize(request)
            await self._sync(force=True)
            refused = await self.table.remove.remote(name)
            if refused == 'unknown':
                raise RequestError(404, f'unknown task {name!r}; the '
                                   f'service has {self.bank.names}')
            if refused:
                raise RequestError(409, refused)
            async with self.edit:
                if name in self.bank.names:
                    await asyncio.to_thread(self.bank.remove_task, name)
                self.applied.pop(name, None)
            status = 200
            return {'removed': name}
        except RequestError as e:
            status = e.status
            return _error(e)
        finally:
            self.metrics.request('remove_task', '-', status, 0.0)

    # ----------------------------------------------------------- helpers
    def _authorize(self, request: Request) -> None:
        if not self.cfg.token_sha256:
            raise RequestError(403, 'adding and removing tasks is off: '
                               'start tools/serve.py with a token in the '
                               f'environment ({TOKEN_ENV}, or the variable '
                               'that --token-env names)')
        auth = request.headers.get('authorization', '')
        scheme, _, token = auth.partition(' ')
        if scheme.lower() != 'bearer' or not token.strip():
            raise RequestError(401, 'this endpoint needs the header '
                               '"Authorization: Bearer <token>"')
        if not hmac.compare_digest(token_digest(token.strip()),
                                   self.cfg.token_sha256):
            raise RequestError(403, 'wrong token')

    def _add_spec(self, body: bytes) -> dict:
        """The task of a POST /v1/tasks body, its paths checked against
        the task root."""
        root = self.cfg.task_root
        if not root:
            raise RequestError(403, 'adding tasks is off: start '
                               'tools/serve.py with --task-root DIR (the '
                               'folder the tasks\' files must be under)')
        doc = json_fields(body, ADD_FIELDS, ' (paths relative to the '
                          'task root)')
        if not TASK_NAME.match(doc['name']):
            raise RequestError(400, f'name {doc["name"]!r}: letters, '
                               f'digits, "_", "-", "." (up to 64)')
        spec = dict(name=doc['name'])
        real_root = os.path.realpath(root)
        for key in ('config', 'checkpoint'):
            path = os.path.realpath(os.path.join(real_root, doc[key]))
            if os.path.commonpath([path, real_root]) != real_root:
                raise RequestError(403, f'{key} {doc[key]!r} is outside '
                                   f'the task root')
            if not os.path.isfile(path):
                raise RequestError(400, f'{key} {doc[key]!r}: no such file '
                                   f'under the task root')
            spec[key] = path
        return spec

    async def _sync(self, force: bool = False) -> None:
        """Take the tasks added and removed elsewhere (at most every
        ``sync_s`` seconds, unless ``force``)."""
        now = time.monotonic()
        if not force and now - self.synced_at < self.cfg.sync_s:
            return
        self.synced_at = now
        version, tasks = await self.table.get.remote()
        if version == self.version:
            return
        async with self.edit:
            await asyncio.to_thread(self._apply, version, tasks)

    def _apply(self, version: int, tasks: dict) -> None:
        """Make the bank hold ``tasks`` (name -> spec, None: from the bank
        file): add first, then remove (a bank keeps one task)."""
        if version == self.version:
            return
        for name, spec in tasks.items():
            if name in self.applied and self.applied[name] == spec:
                continue
            if name in self.applied:  # another task under the same name
                self.bank.remove_task(name)
                del self.applied[name]
            try:
                self.bank.add_task(**spec)
                self.applied[name] = spec
            except Exception:  # noqa: BLE001 -- logged; it answers 404
                logger.exception('task %r could not be added', name)
        for name in [n for n in self.applied if n not in tasks]:
            self.bank.remove_task(name)
            del self.applied[name]
        self.version = version


def start_ray(host: str = '127.0.0.1', port: int = 8000,
              address: Optional[str] = None, num_cpus: Optional[int] = None
              ) -> None:
    """Start Ray (a local one without ``address``; else join that
    cluster) and Serve's HTTP proxy on ``host:port``."""
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:  # the workers inherit the environment: this checkout's package
        root = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        os.environ['PYTHONPATH'] = os.pathsep.join(
            [root] + [p for p in [os.environ.get('PYTHONPATH')] if p])
        ray.init(num_cpus=num_cpus, include_dashboard=False,
                 logging_level=logging.WARNING)
    serve.start(http_options=dict(host=host, port=port))


def deploy(config: ServeConfig, replicas: int = 1,
           replica_cpus: float = 1.0, name: str = APP_NAME,
           route_prefix: str = '/') -> None:
    """Run the application (``replicas`` copies of the bank) on the Ray
    that :func:`start_ray` started, as Serve application ``name`` under
    ``route_prefix``; returns when every replica answers."""
    names = [t['name'] for t in read_bank_yaml(config.bank)['tasks']]
    table = TaskTable.remote(names)
    gpu = 1 if str(config.device or '').startswith('cuda') else 0
    app = BankServer.options(
        num_replicas=replicas,
        max_ongoing_requests=max(64, 4 * config.max_batch_size),
        graceful_shutdown_timeout_s=5, graceful_shutdown_wait_loop_s=0.5,
        ray_actor_options=dict(num_cpus=replica_cpus, num_gpus=gpu),
    ).bind(config, table)
    serve.run(app, name=name, route_prefix=route_prefix)


def start(config: ServeConfig, host: str = '127.0.0.1', port: int = 8000,
          replicas: int = 1, address: Optional[str] = None,
          num_cpus: Optional[int] = None, replica_cpus: float = 1.0) -> str:
    """:func:`start_ray` and :func:`deploy`; returns the URL. :func:`stop`
    ends it."""
    start_ray(host, port, address, num_cpus or max(
        2, int(replicas * replica_cpus) + 1))
    deploy(config, replicas, replica_cpus)
    return f'http://{host}:{port}'


def stop(joined: bool = False) -> None:
    """End the application: on a cluster it joined (``joined``), only
    it; else Serve and the local Ray."""
    try:
        if joined:
            serve.delete(APP_NAME)
        else:
            serve.shutdown()
    finally:
        ray.shutdown()
