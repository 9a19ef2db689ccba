"""The demo's first-run training: transformers' load reports are silenced with one line that says so."""

from __future__ import annotations

from transformers.utils import logging as hf_logging

from local.adapters import quiet_loading


def test_loading_reports_are_silenced_once_with_one_line(capsys):
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_warning()
    hf_logging.enable_progress_bar()
    try:
        quiet_loading()
        quiet_loading()  # the second job of a run says nothing more
        assert hf_logging.get_verbosity() == hf_logging.ERROR
        assert not hf_logging.is_progress_bar_enabled()
        lines = capsys.readouterr().out.strip().splitlines()
        assert len(lines) == 1 and "weight-loading reports are off" in lines[0]
    finally:
        hf_logging.set_verbosity(verbosity)
        (hf_logging.enable_progress_bar if bars else hf_logging.disable_progress_bar)()
