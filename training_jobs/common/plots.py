"""Evaluation plots a person would rather look at than read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display in training jobs or CI
import matplotlib.pyplot as plt
import numpy as np


def confusion_matrix_plot(matrix: np.ndarray, labels: Sequence[str], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(4.8, 4.2), dpi=120)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    peak = matrix.max() if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(
                j, i, str(matrix[i, j]), ha="center", va="center", color="white" if matrix[i, j] > peak / 2 else "black"
            )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per-bin mean confidence, accuracy and count, and the expected calibration error."""
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    mean_conf, accuracy, counts = np.zeros(bins), np.zeros(bins), np.zeros(bins, dtype=int)
    for b in range(bins):
        mask = index == b
        counts[b] = int(mask.sum())
        if counts[b]:
            mean_conf[b] = confidence[mask].mean()
            accuracy[b] = correct[mask].mean()
    ece = float(np.sum(counts / max(1, len(confidence)) * np.abs(accuracy - mean_conf)))
    return mean_conf, accuracy, counts, ece


def reliability_plot(confidence: np.ndarray, correct: np.ndarray, path: Path, title: str) -> float:
    _mean_conf, accuracy, counts, ece = reliability_bins(confidence, correct)
    fig, ax = plt.subplots(figsize=(4.8, 4.2), dpi=120)
    centers = (np.arange(len(counts)) + 0.5) / len(counts)
    ax.bar(centers, accuracy, width=1 / len(counts), edgecolor="black", alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{title} (ECE {ece:.3f})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return ece


def confidence_margin_plot(
    confidence: np.ndarray, margin: np.ndarray, correct: np.ndarray, path: Path, title: str
) -> Path:
    fig, ax = plt.subplots(figsize=(4.8, 4.2), dpi=120)
    ax.scatter(confidence[correct], margin[correct], s=6, alpha=0.5, label="correct")
    ax.scatter(confidence[~correct], margin[~correct], s=8, alpha=0.7, color="crimson", label="wrong")
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("margin (top - second)")
    ax.set_title(title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def loss_curve_plot(history: list[dict[str, float]], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5.2, 3.6), dpi=120)
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["loss"] for h in history], label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def bar_plot(values: dict[str, float], path: Path, title: str, limit: float = 1.0) -> Path:
    """Named rates (or scores) side by side, each labelled with its value."""
    fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=120)
    names = list(values)
    bars = ax.bar(names, [values[n] for n in names], color="#4C72B0")
    for bar, name in zip(bars, names, strict=True):
        ax.annotate(
            f"{values[name]:.3f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom"
        )
    ax.set_ylim(0, limit * 1.1)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
