"""How the advisor decodes: the repetition penalty, and for a plan model, decoding constrained to
the plans the prompt's profile supports. The serving handler and the training job's served
evaluation both use these, so the evaluation measures what is served."""

from __future__ import annotations

import os

from serving.generator import Constraint, Generator
from shared.budgeting import PlanGrammar, fit_prompt, parse_prompt

# Greedy decoding with a mild repetition penalty: without it, small adapters loop on a phrase.
REPETITION_PENALTY = float(os.environ.get("REPETITION_PENALTY", "1.1"))


def plan_constraint(model: Generator, prompt: str) -> Constraint | None:
    """For a plan model and a profile prompt: decode only plans the profile supports (the model
    still chooses which steps); None otherwise."""
    profile = parse_prompt(prompt)
    if model.answer_format != "plan" or profile is None:
        return None
    return PlanGrammar(profile).accepts


def decode(model: Generator, prompt: str, max_new_tokens: int) -> tuple[str, str] | None:
    """What the advisor writes for ``prompt`` as the handler decodes it: the profile fitted to the
    window, decoding constrained to its plans. (The prompt the model saw, its text), or None when
    the prompt cannot fit."""
    fitted = fit_prompt(prompt, model.fits)
    if fitted is None:
        return None
    generation = model.generate_ids(
        model.encode(fitted),
        max_new_tokens=max_new_tokens,
        repetition_penalty=REPETITION_PENALTY,
        constraint=plan_constraint(model, fitted),
    )
    return fitted, generation.text
