"""`Harness`: the harness's state in one Locust process, kept on `environment.harness`.

As Locust's contrib plugins do, one object registered on the environment holds everything the
harness needs for the process's life: the typed options of the current test, the profile and the
SLO thresholds (each loaded once), the master's controller, and the worker's stream and ledger shipper.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from locust.env import Environment

from gate.thresholds import Threshold, default_thresholds, load_thresholds
from harness.options import HarnessOptions
from loadgen.profile import Profile, load_profile

if TYPE_CHECKING:
    from harness.controller import Controller
    from harness.stream import Stream
    from harness.worker import LedgerShipper


class Harness:
    """Registered as `environment.harness` by `harness.hooks`; `Harness.of(environment)` finds it."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.options = HarnessOptions.from_locust(environment.parsed_options)
        self.controller: Controller | None = None
        """The master's (or the only process's) side of the run; None on a worker."""
        self.stream: Stream | None = None
        """This process's messageId stream and traffic, while a test runs here; None on a master."""
        self.shipper: LedgerShipper | None = None
        self._profile: tuple[tuple, Profile] | None = None
        self._thresholds: tuple[str, list[Threshold]] | None = None

    @staticmethod
    def of(environment: Environment) -> Harness:
        harness = getattr(environment, "harness", None)
        if not isinstance(harness, Harness):
            raise RuntimeError("the harness is not set up: load the scenarios with `locust -f scenarios`")
        return harness

    def refresh_options(self) -> HarnessOptions:
        """Take the options again (a test starting from the web UI may have changed them)."""
        self.options = HarnessOptions.from_locust(self.environment.parsed_options)
        return self.options

    def profile(self) -> Profile:
        """The traffic profile with the command line's overrides, loaded once per file and overrides."""
        overrides = self.options.profile_overrides()
        key = (self.options.traffic_profile, tuple(sorted(overrides.items())))
        if self._profile is None or self._profile[0] != key:
            self._profile = (key, replace(load_profile(self.options.traffic_profile), **overrides))
        return self._profile[1]

    def thresholds(self) -> list[Threshold]:
        """The SLO thresholds (--slo, or the bundled defaults), loaded once per file."""
        if self._thresholds is None or self._thresholds[0] != self.options.slo:
            loaded = load_thresholds(self.options.slo) if self.options.slo else default_thresholds()
            self._thresholds = (self.options.slo, loaded)
        return self._thresholds[1]
