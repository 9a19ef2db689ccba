"""The request every link of the path validates with: the front, the router, the fallback.

The front must be the strictest validator on the path. If a later link rejected something the
front accepted, that rejection would surface as a failed task, and a client could make failures
without a single model call. So the fields share one definition here, and the front's API model
and every handler's event model are built from it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.use_cases import UseCase

USER_ID_PATTERN = r"^[A-Za-z0-9_.@:-]{1,128}$"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
# Control characters a model API may refuse and no person types; tab, newline and carriage
# return are ordinary text.
_FORBIDDEN_CONTROLS = frozenset(chr(c) for c in range(32) if chr(c) not in "\t\n\r") | {"\x7f"}


def check_prompt(value: str) -> str:
    """Text every model accepts: valid Unicode (no lone surrogates), no control characters, not blank."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"prompt is not valid Unicode text: a lone surrogate (\\u{ord(value[exc.start]):04x}) at character "
            f"{exc.start}"
        ) from None
    bad = next((i for i, char in enumerate(value) if char in _FORBIDDEN_CONTROLS), None)
    if bad is not None:
        raise ValueError(f"prompt contains a control character (\\u{ord(value[bad]):04x}) at character {bad}")
    if not value.strip():
        raise ValueError("prompt must not be empty or only whitespace")
    return value


# check_prompt as a JSON Schema pattern, for the contract (OpenAPI, fuzzers, clients): some
# character that is neither whitespace nor a forbidden control, and no forbidden control anywhere.
_CONTROLS = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f"
PROMPT_PATTERN = f"^[^{_CONTROLS}]*[^\\s{_CONTROLS}][^{_CONTROLS}]*$"

Prompt = Annotated[str, AfterValidator(check_prompt)]
UserId = Annotated[str, Field(pattern=USER_ID_PATTERN)]
RequestId = Annotated[str, Field(min_length=1, max_length=128)]


class PathRequest(BaseModel):
    """What the front hands the state machine, and what each handler reads back from its event."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_id: RequestId
    use_case: UseCase
    prompt: Prompt
    user_id: UserId | None = None
