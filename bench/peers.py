"""The engines a user would pick instead of ours, prepared for ``make bench`` from PyPI alone.

- onnxruntime-genai (int8, int4): the shipped causal engine; the bench also runs the builder on
  the merged checkpoint, to show what a merged adapter costs or saves against the runtime one.
- CTranslate2 (int8): a wheel that sits beside our packages (requirements-dev.txt).
- llama.cpp through llama-cpp-python (GGUF Q8_0): PyPI has only its source, which compiles
  llama.cpp (about 25 minutes on 2 cores), so it is built once into its own virtualenv under the
  bench's work directory; the GGUF file comes from llama.cpp's own converter in that source.

Each returns a path to run, or raises :class:`PeerUnavailable` with a one-line reason the bench
prints in place of the row.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404 - pip, venv and the engines' own converters, with fixed arguments
import sys
import tarfile
import tempfile
import venv
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

LLAMA_CPP_PYTHON = "0.3.36"


class PeerUnavailable(RuntimeError):
    """This peer cannot run here; the message is the reason, in one line."""


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def versions(work: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for package in ("onnxruntime", "onnxruntime-genai", "ctranslate2", "torch", "transformers", "peft"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    found["llama-cpp-python"] = LLAMA_CPP_PYTHON if _llama_python(work).exists() else "not built"
    return found


def _run(command: list[str], log_file: Path, what: str, env: dict[str, str] | None = None) -> None:
    with log_file.open("a") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env, check=False)  # noqa: S603  # nosec B603
    if done.returncode != 0:
        tail = log_file.read_text()[-300:].strip().splitlines()
        raise PeerUnavailable(f"{what} failed (exit {done.returncode}; {log_file}): {tail[-1] if tail else ''}")


def genai_merged(merged: Path, out: Path, precision: str) -> Path:
    """onnxruntime-genai's builder on the merged checkpoint (the adapter folded into the weights)."""
    if (out / "genai_config.json").is_file():
        return out
    log(f"onnxruntime-genai builder: merged checkpoint at {precision}")
    scratch = out.with_suffix(".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(merged), "-o", str(scratch)]
    command += ["-p", precision, "-e", "cpu", "-c", str(scratch / "cache")]
    # As a user tuning it would (and as our export does): logits for the last prompt position only.
    _run([*command, "--extra_options", "prune_lm_head=true"], scratch / "builder.log", "builder")
    shutil.rmtree(scratch / "cache", ignore_errors=True)
    scratch.rename(out)
    return out


def ct2_model(merged: Path, out: Path) -> Path:
    """CTranslate2's converter on the merged checkpoint, weights stored as int8."""
    if (out / "model.bin").is_file():
        return out
    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError as exc:
        raise PeerUnavailable(f"ctranslate2 is not installed ({exc})") from exc
    log("CTranslate2 converter: merged checkpoint at int8")
    scratch = out.with_suffix(".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        TransformersConverter(str(merged)).convert(str(scratch), quantization="int8", force=True)
    except Exception as exc:  # the converter raises many types for unsupported models
        raise PeerUnavailable(f"CTranslate2 cannot convert this model: {str(exc).splitlines()[0][:200]}") from exc
    shutil.copy(merged / "tokenizer.json", scratch / "tokenizer.json")
    config_path = scratch / "config.json"
    config = json.loads(config_path.read_text())
    if config.get("bos_token") is None:
        # CTranslate2 will not load a model whose BOS token is null; the bench hands it the prompt's
        # own tokens, so this placeholder is never inserted.
        config["bos_token"] = config.get("eos_token")
        config_path.write_text(json.dumps(config, indent=2))
    scratch.rename(out)
    return out


def _llama_python(work: Path) -> Path:
    return work / "peers" / "llama-venv" / "bin" / "python"


def _llama_source(work: Path) -> Path:
    """llama-cpp-python's source distribution (it vendors llama.cpp and its GGUF converter)."""
    target = work / "peers" / "src"
    archive = target / f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"
    if not archive.is_file():
        target.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        command += [f"llama-cpp-python=={LLAMA_CPP_PYTHON}", "-d", str(target)]
        _run(command, target / "download.log", "pip download llama-cpp-python")
    return archive


def llama_python(work: Path) -> Path:
    """An interpreter with llama-cpp-python, built once from source into its own virtualenv."""
    python = _llama_python(work)
    if python.exists():
        return python
    if shutil.which("cmake") is None or shutil.which("c++") is None:
        raise PeerUnavailable("llama-cpp-python is source-only on PyPI and this machine has no cmake or C++ compiler")
    archive = _llama_source(work)
    root = python.parent.parent
    partial = root.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    venv.create(partial, with_pip=True)
    build_log = work / "peers" / "llama-build.log"
    log(f"llama-cpp-python {LLAMA_CPP_PYTHON}: compiling llama.cpp once (about 25 min on 2 cores; log {build_log})")
    # Native CPU flags: the bench runs where it is built. OpenMP off: threads are set per call.
    env = {**os.environ, "CMAKE_ARGS": "-DGGML_NATIVE=ON -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF"}
    env["CMAKE_BUILD_PARALLEL_LEVEL"] = str(os.cpu_count() or 2)
    _run([str(partial / "bin" / "python"), "-m", "pip", "install", str(archive)], build_log, "building llama.cpp", env)
    partial.rename(root)  # venvs record their path in scripts, not in the interpreter: python still runs
    return python


def gguf_q8(merged: Path, out: Path, work: Path) -> Path:
    """llama.cpp's converter (from the same source as the engine) on the merged checkpoint, Q8_0."""
    if out.is_file():
        return out
    archive = _llama_source(work)
    source = work / "peers" / "llama-src"
    if not (source / "convert_hf_to_gguf.py").is_file():
        prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/"
        with tarfile.open(archive) as tar, tempfile.TemporaryDirectory() as scratch:
            wanted = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
            wanted = [m for m in wanted if m.name.endswith(".py") or "/gguf-py/" in m.name or "/conversion/" in m.name]
            tar.extractall(scratch, members=wanted, filter="data")
            shutil.rmtree(source, ignore_errors=True)
            shutil.move(str(Path(scratch) / prefix), str(source))
    log("llama.cpp converter: merged checkpoint to GGUF Q8_0")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Its own gguf-py first: the converter and the engine agree on the format version.
    env = {**os.environ, "PYTHONPATH": str(source / "gguf-py")}
    command = [sys.executable, str(source / "convert_hf_to_gguf.py"), str(merged), "--outtype", "q8_0"]
    _run([*command, "--outfile", str(out)], out.with_suffix(".log"), "convert_hf_to_gguf", env)
    return out
