"""The XGBoost 3.0-5 image's single-model serving stack in script mode, started for pipelines_src/local/serving.py.

Runs on the image's interpreter (``.venv-images/sagemaker-xgboost-3.0-5``) with the container's
environment (``SAGEMAKER_BASE_DIR``, ``SAGEMAKER_PROGRAM``, ``SAGEMAKER_SUBMIT_DIRECTORY``,
``SAGEMAKER_BIND_TO_PORT``, ``SAGEMAKER_USE_NGINX=false``, ...)::

    python script_mode_server.py HOST

It does what the image's ``serve`` does without nginx (``sagemaker_xgboost_container.serving``'s
``serving_entrypoint``, then sagemaker_containers' ``_server.start``): ``OMP_NUM_THREADS`` defaults
to 1, the user module is installed with ``_modules.import_module(env.module_dir, env.module_name)``
(copy or extract ``SAGEMAKER_SUBMIT_DIRECTORY`` into the code folder, generate a setup.py,
``pip install .``), then gunicorn runs with ``_server.start``'s arguments except the bind address:
``HOST:SAGEMAKER_BIND_TO_PORT`` instead of ``0.0.0.0``. This process becomes gunicorn (exec) instead
of waiting for it. The WSGI app is ``main`` below, which does what the image's
``sagemaker_xgboost_container.serving:main`` does when ``SAGEMAKER_PROGRAM`` is set: on the first
request of each worker, import the user module by name, build sagemaker_containers' Transformer from
``model_fn`` and either ``transform_fn`` or ``input_fn``/``predict_fn``/``output_fn`` (not both),
load the model and serve it with ``worker.Worker``. The image's default input, predict and output
handlers (its own XGBoost encoders) are not here: a module that leaves one of the three out is
refused.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

HANDLERS = ("input_fn", "predict_fn", "output_fn")

_app: Any = None


def transformer_for(module: Any) -> Any:
    """sagemaker_containers' Transformer over the module's handlers, as the image builds it."""
    from sagemaker_containers.beta.framework import transformer  # type: ignore[import-not-found]

    model_fn = getattr(module, "model_fn", transformer.default_model_fn)
    handlers = {name: getattr(module, name, None) for name in HANDLERS}
    transform_fn = getattr(module, "transform_fn", None)
    if transform_fn is not None and any(handler is not None for handler in handlers.values()):
        raise RuntimeError("Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn")
    if transform_fn is not None:
        return transformer.Transformer(model_fn=model_fn, transform_fn=transform_fn)
    missing = [name for name, handler in handlers.items() if handler is None]
    if missing:
        raise RuntimeError(
            f"{module.__name__} has no {', '.join(missing)}: the image's default handlers are not in this harness"
        )
    return transformer.Transformer(model_fn=model_fn, **handlers)


def main(environ: Any, start_response: Any) -> Any:
    """The WSGI app: the user module's Transformer in sagemaker_containers' Flask worker, built on first use."""
    global _app
    if _app is None:
        from sagemaker_containers.beta.framework import env, worker

        serving_env = env.ServingEnv()
        if serving_env.module_name is None:
            raise RuntimeError("SAGEMAKER_PROGRAM is not set: the image's algorithm mode is not in this harness")
        module = importlib.import_module(serving_env.module_name)
        user_transformer = transformer_for(module)
        user_transformer.initialize()
        _app = worker.Worker(transform_fn=user_transformer.transform, module_name=serving_env.module_name)
    return _app(environ, start_response)


def gunicorn_arguments(host: str, app: str) -> list[str]:
    """Install the user module, then gunicorn's command line as ``_server.start`` builds it, bound to ``host``."""
    from sagemaker_containers import _env, _modules  # type: ignore[import-not-found]

    serving_env = _env.ServingEnv()
    if serving_env.use_nginx:
        raise RuntimeError("SAGEMAKER_USE_NGINX must be false: there is no nginx here")
    if serving_env.module_name:
        _modules.import_module(serving_env.module_dir, serving_env.module_name)
    pythonpath = ",".join([*sys.path, _env.code_dir])
    workers = serving_env.model_server_workers
    return [
        "gunicorn",
        "--timeout",
        str(serving_env.model_server_timeout),
        "-k",
        "gevent",
        "--pythonpath",
        pythonpath,
        "-b",
        f"{host}:{serving_env.http_port}",
        "--worker-connections",
        str(1000 * workers),
        "-w",
        str(workers),
        "--log-level",
        "info",
        app,
    ]


def launch(host: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    app = f"{Path(__file__).stem}:main"
    arguments = gunicorn_arguments(host, app)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(arguments[0], arguments)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: script_mode_server.py HOST")
    launch(sys.argv[1])
