"""The one error a training job raises for a bad setup; a leaf module, imported by everything else."""

from __future__ import annotations


class JobSetupError(ValueError):
    """The job cannot start: a channel, a setting or the data is missing or wrong."""
