"""Settings every suite shares: no AWS account, no tracing daemon, no real credentials.

It also records every AWS call our functions make during the run (tests/iam/recorder.py); the
IAM coverage test, which pytest runs last, judges them against the synthesized policies. Set
FINAI_IAM_COVERAGE=0 to run without recording.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.iam.recorder import Recorder

if TYPE_CHECKING:
    from tests.infrastructure.conftest import Synthesized

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "FinAI")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
# moto runs each task of the shipped ASL in this process: give its 1-s tasks room on a loaded
# two-core machine (local/request_path.py, _scaled_timeouts). Behaviour, not timing, is tested here;
# the real timeouts are checked from the template by tests/infrastructure/test_timeout_budget.py.
os.environ.setdefault("FINAI_LOCAL_TIMEOUT_SCALE", "5")

RECORDER = Recorder()
RECORDING = os.environ.get("FINAI_IAM_COVERAGE", "1") != "0"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "iam_coverage: judges the session's recorded AWS calls; runs last")
    if RECORDING:
        RECORDER.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    RECORDER.uninstall()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The coverage judgement needs every other test's calls, so it goes last.
    items.sort(key=lambda item: item.get_closest_marker("iam_coverage") is not None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    RECORDER.current_test = item.nodeid
    try:
        return (yield)
    finally:
        RECORDER.current_test = ""


@pytest.fixture(scope="session")
def recorder() -> Recorder:
    return RECORDER


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app as `cdk synth` builds it from cdk.json, synthesized once per session."""
    from tests.infrastructure.conftest import synthesize

    return synthesize(Path(tmp_path_factory.mktemp("cdk.out")))


@pytest.fixture(scope="session")
def synthesized_dns(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app with DNS failover on (a domain in context): shared by every test that needs it."""
    from tests.infrastructure.conftest import DNS_CONTEXT, synthesize

    return synthesize(Path(tmp_path_factory.mktemp("dns")), DNS_CONTEXT)
