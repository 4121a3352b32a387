"""What code in the local serving stack sees: the container's layout and environment, no AWS credentials,
no package index, and a server that listens on 127.0.0.1 only."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines_src.local.images import ImageRuntime
from pipelines_src.local.serving import HOST, ServingStack

pytestmark = [pytest.mark.slow, pytest.mark.parity]

PROBE = """
import json, os, subprocess, sys, urllib.request


def model_fn(model_dir):
    return {"model_dir": model_dir, "files": sorted(os.listdir(model_dir))}


def transform_fn(model, body, content_type, accept):
    from sagemaker_containers.beta.framework import worker

    try:
        urllib.request.urlopen("https://pypi.org/simple/six/", timeout=5)
        reached = True
    except OSError:
        reached = False
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", os.environ["TMPDIR"], "six"],
        capture_output=True, text=True, timeout=120,
    )
    names = ("SAGEMAKER_BASE_DIR", "SAGEMAKER_PROGRAM", "SAGEMAKER_SUBMIT_DIRECTORY", "SAGEMAKER_USE_NGINX",
             "OMP_NUM_THREADS", "PIP_NO_INDEX", "EXAMPLE")
    answer = {
        "model": model,
        "module": __file__,
        "environment": {name: os.environ.get(name) for name in names},
        "aws": sorted(name for name in os.environ if name.startswith("AWS_")),
        "pypi_reached": reached,
        "pip_download": download.returncode,
        "body": body if isinstance(body, str) else body.decode(),
        "content_type": content_type,
        "accept": accept,
        "path": sys.path,
    }
    return worker.Response(response=json.dumps(answer), status=200, mimetype="application/json")
"""


@pytest.fixture(scope="module")
def stack(
    xgboost_image: ImageRuntime, tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch
) -> Iterator[ServingStack]:
    root = tmp_path_factory.mktemp("probe")
    (root / "model" / "code").mkdir(parents=True)
    (root / "model" / "weights.bin").write_bytes(b"\0")
    (root / "model" / "code" / "probe.py").write_text(PROBE)
    (root / "tmp").mkdir()
    monkeypatch_module.setenv("TMPDIR", str(root / "tmp"))
    monkeypatch_module.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch_module.setenv("PIP_INDEX_URL", "https://pypi.org/simple")
    environment = {"SAGEMAKER_PROGRAM": "probe.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code", "EXAMPLE": "1"}
    with ServingStack(root / "model", environment) as running:
        yield running


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def probed(stack: ServingStack) -> dict[str, object]:
    status, media, body = stack.invoke(b"1,2", "text/csv", None)
    assert (status, media) == (200, "application/json"), body
    answer: dict[str, object] = json.loads(body)
    return answer


def test_the_code_and_the_model_are_laid_out_like_opt_ml(stack: ServingStack, probed: dict[str, object]) -> None:
    base = stack.base_dir
    assert probed["model"] == {"model_dir": str(base / "model"), "files": ["code", "weights.bin"]}
    assert Path(str(probed["module"])) == base / "code" / "probe.py", "imported from the copy in /opt/ml/code"
    assert (base / "code" / "probe.py").is_file() and (base / "code" / "setup.py").is_file()
    assert probed["environment"] == {
        "SAGEMAKER_BASE_DIR": str(base),
        "SAGEMAKER_PROGRAM": "probe.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": str(base / "model" / "code"),
        "SAGEMAKER_USE_NGINX": "false",
        "OMP_NUM_THREADS": "1",
        "PIP_NO_INDEX": "1",
        "EXAMPLE": "1",
    }


def test_the_code_folder_comes_before_every_site_packages_on_the_path(
    stack: ServingStack, probed: dict[str, object]
) -> None:
    """The worker imports the program from the code folder (gunicorn's --pythonpath puts it first), so no
    module of the same name in the image environment's site-packages, or pip's install of the folder, wins."""
    path = [str(item) for item in probed["path"]]  # type: ignore[attr-defined]
    code = str(stack.base_dir / "code")
    assert Path(str(probed["module"])) == Path(code) / "probe.py"
    site_packages = [index for index, item in enumerate(path) if item.endswith("site-packages")]
    assert site_packages and path.index(code) < min(site_packages)


def test_the_request_reaches_the_handler_as_the_container_passes_it(probed: dict[str, object]) -> None:
    assert (probed["body"], probed["content_type"], probed["accept"]) == ("1,2", "text/csv", "application/json")


def test_no_credentials_and_no_package_index(probed: dict[str, object]) -> None:
    assert probed["aws"] == []
    assert probed["pypi_reached"] is False
    assert probed["pip_download"] != 0


def _listening(port: int) -> set[str]:
    """The local addresses of IPv4 sockets listening on ``port`` (Linux's /proc/net/tcp, addresses in hex)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="reads Linux's /proc/net/tcp")
def test_the_server_listens_on_loopback_only(stack: ServingStack) -> None:
    assert stack.ping() == 200
    assert _listening(stack.port) == {HOST}
