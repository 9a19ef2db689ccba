"""The platform on one machine: the shipped ASL and handlers, run against moto."""

import sys
from pathlib import Path

# lambdas/ is the root of every zip function; putting it on the path lets the local platform
# import handlers exactly as Lambda does (``router.handler``, ``shared.strategy``).
_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)
