"""The SageMaker ``sourcedir.tar.gz``: built at synth, byte-for-byte reproducible.

CDK zips directory assets, but script mode wants a tar.gz, so the archive is built here with
fixed ordering, timestamps and owners; the same sources always give the same bytes (and so the
same asset hash and template).
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENTRY_POINTS = {
    "train_sentiment.py": "training_jobs.sentiment.train",
    "train_advisor.py": "training_jobs.advisor.train",
}
INCLUDED_SUFFIXES = (".py", ".yaml")
# Runs on an operator's machine, not in a job: it needs the SageMaker SDK, which the image lacks.
OPERATOR_ONLY = ("training_jobs/launch.py",)
SHARED_MODULES = ("__init__.py", "budgeting.py", "grounding.py")
# The advisor job's served evaluation runs the serving runtime (lambdas/serving) on its artifact.
SERVING_MODULES = ("__init__.py", "artifacts.py", "genai.py", "generator.py", "plans.py", "runtime.py")


def _entry_script(module: str) -> bytes:
    return (
        f'"""SageMaker entry point: runs {module}."""\n\n'
        f"from {module} import main\n\n"
        'if __name__ == "__main__":\n'
        "    raise SystemExit(main())\n"
    ).encode()


def _members() -> list[tuple[str, bytes]]:
    files = [
        (str(path.relative_to(REPO)), path.read_bytes())
        for path in sorted((REPO / "training_jobs").rglob("*"))
        if path.is_file()
        and path.suffix in INCLUDED_SUFFIXES
        and "__pycache__" not in path.parts
        and str(path.relative_to(REPO)) not in OPERATOR_ONLY
    ]
    # The budgeting rules are shared with the fallback Lambda; the data pipeline imports them.
    files += [(f"shared/{name}", (REPO / "lambdas" / "shared" / name).read_bytes()) for name in SHARED_MODULES]
    files += [(f"serving/{name}", (REPO / "lambdas" / "serving" / name).read_bytes()) for name in SERVING_MODULES]
    files += [(name, _entry_script(module)) for name, module in sorted(ENTRY_POINTS.items())]
    return sorted(files)


def build_sourcedir(out_dir: Path) -> Path:
    """Write ``sourcedir.tar.gz`` into ``out_dir`` and return its path."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in _members():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "sourcedir.tar.gz"
    with target.open("wb") as handle, gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as zipped:
        zipped.write(raw.getvalue())
    return target
