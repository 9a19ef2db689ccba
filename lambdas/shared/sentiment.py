"""The sentiment use case's contract, shared by every tier that can answer it.

A sentiment answer is a label, whoever produced it: the fine-tuned classifier (a serving Lambda,
with probabilities), a Bedrock model told to answer with one word, or the fallback's cheaper
model. The tiers differ in what else they know, so probabilities and confidence are optional.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

# The classifier's label order (training_jobs.data.sentiment.LABELS); a test keeps them equal.
Label = Literal["negative", "neutral", "positive"]
LABELS: tuple[str, ...] = get_args(Label)

# The serving classifier's per-text limit (lambdas/sentiment/handler.py MAX_TEXT_CHARS, kept equal
# by a test). The front rejects longer sentiment prompts with a 413 rather than letting a client's
# oversized text reach a model and count as that model's failure.
MAX_TEXT_CHARS = 2000

# Appended by code, not kept in the strategy, so an edited system prompt cannot break the parser.
LABEL_INSTRUCTION = (
    "Classify the sentiment of the user's text for a financial reader. Answer with exactly one word: "
    "negative, neutral or positive."
)

# A label must stand alone between non-alphanumerics. Not ``\b``: it counts "_" as a word
# character, so a Markdown-italic "_Negative_" would not read.
_LABEL_WORDS = re.compile(r"(?<![a-z0-9])(" + "|".join(LABELS) + r")(?![a-z0-9])", re.IGNORECASE)


class SentimentResult(BaseModel):
    """What the API returns for a sentiment request (absent when the answer is the static one)."""

    model_config = ConfigDict(extra="forbid")

    label: Label
    confidence: float | None = Field(
        default=None, ge=0, le=1, description="The classifier's probability of the label; null from a generative model"
    )
    probabilities: dict[str, float] | None = Field(
        default=None, description="Every label's probability, from the fine-tuned classifier only"
    )
    truncated: bool = Field(
        default=False, description="The text was longer than the classifier's token window and was cut to fit"
    )


def label_from_text(text: str) -> str | None:
    """The label a generative model answered with, or None when it did not answer with one.

    Models asked for one word sometimes say "Sentiment: Negative." or explain themselves; one
    distinct label anywhere in the answer is accepted. Several different labels ("not positive,
    rather negative") are ambiguous and rejected, so the tier fails visibly instead of guessing.
    """
    found = {match.lower() for match in _LABEL_WORDS.findall(text)}
    return found.pop() if len(found) == 1 else None


def from_classifier(result: dict[str, Any]) -> SentimentResult:
    """One result of the sentiment Lambda (``{"label", "probabilities", "confidence", ...}``)."""
    return SentimentResult(
        label=result["label"],
        confidence=float(result["confidence"]),
        probabilities={str(k): float(v) for k, v in dict(result["probabilities"]).items()},
        truncated=bool(result.get("truncated", False)),
    )


def describe(result: SentimentResult) -> str:
    """The human-readable ``response`` line that accompanies the structured result."""
    line = f"Sentiment: {result.label}"
    if result.confidence is not None:
        line += f" (confidence {result.confidence:.2f})"
    if result.truncated:
        line += "; only the start of the text fitted the classifier"
    return line + "."
