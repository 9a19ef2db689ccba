"""``python -m training_jobs.data.generate``: transactions, advisor pairs, all from one YAML config.

python -m training_jobs.data.generate --config training_jobs/configs/synthetic.yaml --out data/advisor
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training_jobs.data.advisor_pairs import write_pairs
from training_jobs.data.config import ConfigError, load_config
from training_jobs.data.transactions import generate, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--format", choices=["csv", "parquet"], help="overrides output_format in the config")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    frame, _ = generate(config, progress=True)
    path = write(frame, args.out, args.format or config.output_format)
    print(f"wrote {len(frame)} transactions to {path}", flush=True)
    counts = write_pairs(frame, config.advisor, config.seed, args.out, progress=True)
    print(json.dumps({"transactions": len(frame), **{f"{k}_pairs": v for k, v in counts.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
