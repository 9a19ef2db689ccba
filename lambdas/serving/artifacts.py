"""Find, fetch and verify a serving artifact (``manifest.json`` + ONNX graphs + ``tokenizer.json``).

Three sources:
- named by the request (``artifact_uri``, which the router copies from the strategy's variant, and
  the training pipeline's promotion writes): SageMaker's ``model.tar.gz`` (its ``serve/`` folder
  is the artifact) or an ``s3://`` prefix holding the artifact's files; fetched once into
  ``/tmp`` and kept while it is in use, so promotion changes what serves on the next request;
- configured: ``MODEL_S3_URI`` (a prefix) and ``MODEL_MANIFEST_SHA256``, downloaded at first use.
  The manifest's own checksum pins the version;
- baked into the image: ``MODEL_DIR`` (default ``$LAMBDA_TASK_ROOT/model``).

The manifest pins every file, so a swapped or truncated file is a clear error instead of answers
from the wrong weights. A function with none of the three raises :class:`NoArtifact`, which the
handlers report as 503 ``no_artifact`` (and in their health action), never a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

MANIFEST = "manifest.json"
SUPPORTED_FORMAT = 1


class ArtifactError(RuntimeError):
    """The artifact is missing, incomplete or does not match its checksums."""


class NoArtifact(ArtifactError):
    """This function has no artifact: none named by the request, configured, or baked in."""


# The strategy's artifact_uri: an S3 object (SageMaker's model.tar.gz) or prefix.
ARTIFACT_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9!_.*'()/=-]+$")
SERVE_DIR = "serve"  # where the training jobs put the artifact inside their model directory
PROMOTED_KEEP = 2  # promoted artifacts kept in /tmp (an A/B test may use two at once)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.manifest["model_version"])

    def file(self, name: str) -> Path:
        return self.path / name


def verify(path: Path, manifest_sha256: str | None = None) -> Artifact:
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"no {MANIFEST} in {path}: export the adapter with training_jobs.export.onnx_export")
    if manifest_sha256 and sha256_file(manifest_path) != manifest_sha256.lower():
        raise ArtifactError(f"{manifest_path} does not match MODEL_MANIFEST_SHA256 {manifest_sha256}")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != SUPPORTED_FORMAT:
        raise ArtifactError(f"artifact format {manifest.get('format')!r} is not {SUPPORTED_FORMAT}")
    for name, expected in manifest.get("files", {}).items():
        candidate = path / name
        if not candidate.is_file():
            raise ArtifactError(f"{name} is listed in the manifest but missing from {path}")
        actual = sha256_file(candidate)
        if actual != expected:
            raise ArtifactError(f"checksum mismatch for {name}: manifest {expected[:12]}..., file {actual[:12]}...")
    return Artifact(path, manifest)


def _s3(client: Any | None) -> Any:
    if client is None:
        import boto3

        client = boto3.client("s3")
    return client


def _fetch(client: Any, bucket: str, key: str, target: Path) -> None:
    try:
        client.download_file(bucket, key, str(target))
    except Exception as exc:  # botocore raises several types; all mean the same here
        raise ArtifactError(f"could not download s3://{bucket}/{key}: {exc}") from exc


def download(uri: str, target: Path, client: Any | None = None) -> Path:
    """Copy the artifact under an ``s3://bucket/prefix`` into ``target`` (manifest first)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ArtifactError(f"MODEL_S3_URI must look like s3://bucket/prefix, not {uri!r}")
    client = _s3(client)
    prefix = parsed.path.strip("/")
    target.mkdir(parents=True, exist_ok=True)

    def fetch(name: str) -> None:
        _fetch(client, parsed.netloc, f"{prefix}/{name}" if prefix else name, target / name)

    fetch(MANIFEST)
    manifest = json.loads((target / MANIFEST).read_text())
    for name in manifest.get("files", {}):
        if "/" in name or name.startswith("."):
            raise ArtifactError(f"manifest names an unsafe file {name!r}")
        fetch(name)
    return target


def _cache_root(env: dict[str, str]) -> Path:
    # /tmp is the only writable path in Lambda.
    return Path(env.get("MODEL_CACHE_DIR", "/tmp/model"))  # noqa: S108  # nosec B108


def _unpack_serve(tarball: Path, target: Path) -> None:
    """The ``serve/`` folder of a training job's ``model.tar.gz``, unpacked into ``target``."""
    with tarfile.open(tarball, "r:*") as archive:
        members = []
        for member in archive.getmembers():
            name = member.name.removeprefix("./")
            if name.startswith(f"{SERVE_DIR}/") and member.isfile():
                member.name = name.removeprefix(f"{SERVE_DIR}/")
                members.append(member)
        if not any(m.name == MANIFEST for m in members):
            raise ArtifactError(f"{tarball.name} has no {SERVE_DIR}/{MANIFEST}: it is not a training job's model")
        archive.extractall(target, members=members, filter="data")  # data filter: no links, no escapes


def promoted(uri: str, env: dict[str, str] | None = None, client: Any | None = None) -> Artifact:
    """The artifact a request names (the strategy's ``artifact_uri``), fetched once and verified."""
    env = dict(os.environ if env is None else env)
    if not ARTIFACT_URI.match(uri):
        raise ArtifactError(f"artifact_uri must be s3://bucket/key, not {uri[:200]!r}")
    root = _cache_root(env) / "promoted"
    target = root / hashlib.sha256(uri.encode()).hexdigest()[:16]
    if not (target / MANIFEST).is_file():
        root.mkdir(parents=True, exist_ok=True)
        # Ephemeral storage is finite: keep only the most recently used others.
        others = sorted((p for p in root.iterdir() if p != target), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in others[PROMOTED_KEEP - 1 :]:
            shutil.rmtree(stale, ignore_errors=True)
        partial = target.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        if uri.endswith((".tar.gz", ".tgz")):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            partial.mkdir(parents=True)
            tarball = partial / "model.tar.gz"
            _fetch(_s3(client), bucket, key, tarball)
            _unpack_serve(tarball, partial)
            tarball.unlink()
        else:
            download(uri, partial, client)
        partial.rename(target)  # whole or not at all: a cut download is never taken for an artifact
    os.utime(target)
    return verify(target)


def locate(env: dict[str, str] | None = None, client: Any | None = None) -> Artifact:
    """The verified artifact this function serves by default: from S3 when configured, else from
    the image; :class:`NoArtifact` when there is neither."""
    env = dict(os.environ if env is None else env)
    uri = env.get("MODEL_S3_URI")
    if uri:
        expected = env.get("MODEL_MANIFEST_SHA256")
        if not expected:
            raise ArtifactError("MODEL_S3_URI is set without MODEL_MANIFEST_SHA256: the version must be pinned")
        # The directory is named by the pinned checksum.
        cache = _cache_root(env) / expected[:16]
        if not (cache / MANIFEST).is_file():
            download(uri, cache, client)
        return verify(cache, expected)
    root = Path(env.get("MODEL_DIR") or str(Path(env.get("LAMBDA_TASK_ROOT", ".")) / "model"))
    if not (root / MANIFEST).is_file():
        raise NoArtifact(
            f"no artifact: none named by the request, MODEL_S3_URI is unset, and none is baked into the image "
            f"({root / MANIFEST}); promote one with the training pipeline or set serving.<function>.artifact_s3_uri"
        )
    return verify(root, env.get("MODEL_MANIFEST_SHA256"))


def resolve(uri: str | None, env: dict[str, str] | None = None, client: Any | None = None) -> Artifact:
    """The artifact for one request: the one it names, else the function's default."""
    return promoted(uri, env, client) if uri else locate(env, client)
