"""Find, fetch and verify a serving artifact (``manifest.json`` + ONNX graphs + ``tokenizer.json``).

Two sources, chosen by configuration:
- baked into the image: ``MODEL_DIR`` (default ``$LAMBDA_TASK_ROOT/model``);
- S3: ``MODEL_S3_URI`` (a prefix holding the artifact's files) and ``MODEL_MANIFEST_SHA256``,
  downloaded at cold start into ``/tmp``. The manifest's own checksum pins the version, and the
  manifest pins every file, so a swapped or truncated file fails the cold start with a clear
  error instead of serving from the wrong weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

MANIFEST = "manifest.json"
SUPPORTED_FORMAT = 1


class ArtifactError(RuntimeError):
    """The artifact is missing, incomplete or does not match its checksums."""


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


def download(uri: str, target: Path, client: Any | None = None) -> Path:
    """Copy the artifact under an ``s3://bucket/prefix`` into ``target`` (manifest first)."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ArtifactError(f"MODEL_S3_URI must look like s3://bucket/prefix, not {uri!r}")
    if client is None:
        import boto3

        client = boto3.client("s3")
    prefix = parsed.path.strip("/")
    target.mkdir(parents=True, exist_ok=True)

    def fetch(name: str) -> None:
        key = f"{prefix}/{name}" if prefix else name
        try:
            client.download_file(parsed.netloc, key, str(target / name))
        except Exception as exc:  # botocore raises several types; all mean the same here
            raise ArtifactError(f"could not download s3://{parsed.netloc}/{key}: {exc}") from exc

    fetch(MANIFEST)
    manifest = json.loads((target / MANIFEST).read_text())
    for name in manifest.get("files", {}):
        if "/" in name or name.startswith("."):
            raise ArtifactError(f"manifest names an unsafe file {name!r}")
        fetch(name)
    return target


def locate(env: dict[str, str] | None = None, client: Any | None = None) -> Artifact:
    """The verified artifact this function serves, from S3 when configured, else from the image."""
    env = dict(os.environ if env is None else env)
    uri = env.get("MODEL_S3_URI")
    if uri:
        expected = env.get("MODEL_MANIFEST_SHA256")
        if not expected:
            raise ArtifactError("MODEL_S3_URI is set without MODEL_MANIFEST_SHA256: the version must be pinned")
        # /tmp is the only writable path in Lambda; the directory is named by the pinned checksum.
        cache = Path(env.get("MODEL_CACHE_DIR", "/tmp/model")) / expected[:16]  # noqa: S108  # nosec B108
        if not (cache / MANIFEST).is_file():
            download(uri, cache, client)
        return verify(cache, expected)
    root = env.get("MODEL_DIR") or str(Path(env.get("LAMBDA_TASK_ROOT", ".")) / "model")
    return verify(Path(root), env.get("MODEL_MANIFEST_SHA256"))
