"""Instruction pairs for the budgeting advisor: a spending profile in, a plan of 2-3 steps out
(``shared.budgeting``: the model chooses the steps, code renders their amounts).

Users are split into train and eval before any pair is made, so no user appears in both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from shared.budgeting import format_prompt, plan_of, render, suggest
from training_jobs.data.baseline import profile_from_summary
from training_jobs.data.config import AdvisorPairs
from training_jobs.data.summaries import summarize


def split_users(user_ids: list[str], eval_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """A stable split by a hash of (seed, user): the same user always lands on the same side."""

    def score(user_id: str) -> float:
        digest = hashlib.sha256(f"{seed}:{user_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    ordered = sorted(user_ids, key=lambda u: (score(u), u))
    n_eval = max(1, round(len(ordered) * eval_fraction)) if len(ordered) > 1 else 0
    return sorted(ordered[n_eval:]), sorted(ordered[:n_eval])


def pairs_for_user(
    transactions: pd.DataFrame, user_id: str, settings: AdvisorPairs, end: date
) -> Iterator[dict[str, Any]]:
    for window in range(settings.as_of_windows):
        as_of = end - timedelta(days=window * settings.window_spacing_days)
        for period, days in settings.period_days():
            summary = summarize(transactions, user_id, as_of, days)
            if summary.spend <= 0:
                continue
            profile = profile_from_summary(summary, period)
            steps = suggest(profile)
            # The target is computed from what the prompt says, so the model can learn it: the
            # plan (which steps), while code renders the amounts ("advice", for reference).
            yield {
                "user_id": user_id,
                "as_of": as_of.isoformat(),
                "period": period,
                "prompt": format_prompt(profile),
                "target": plan_of(profile, steps),
                "advice": render(profile, steps),
            }


def write_pairs(
    transactions: pd.DataFrame, settings: AdvisorPairs, seed: int, out_dir: Path, progress: bool = False
) -> dict[str, int]:
    """Write train.jsonl and eval.jsonl; returns the number of pairs in each."""
    end = max(transactions["date"])
    users = sorted(transactions["user_id"].unique())
    train, evaluation = split_users(users, settings.eval_fraction, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_user = {str(user): frame for user, frame in transactions.groupby("user_id", sort=True)}
    counts = {}
    for name, split in (("train", train), ("eval", evaluation)):
        count = 0
        with (out_dir / f"{name}.jsonl").open("w") as handle:
            for i, user_id in enumerate(split):
                for pair in pairs_for_user(by_user[user_id], user_id, settings, end):
                    handle.write(json.dumps(pair, sort_keys=True) + "\n")
                    count += 1
                if progress and (i + 1) % max(1, len(split) // 5) == 0:
                    print(f"{name}: pairs for {i + 1}/{len(split)} users", flush=True)
        counts[name] = count
    return counts
