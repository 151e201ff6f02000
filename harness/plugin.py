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
from loadgen.profile import Profile, ProfileError, load_profile

if TYPE_CHECKING:
    from harness.controller import Controller
    from harness.stream import Stream
    from harness.worker import LedgerShipper


class Harness:
    """Registered as `environment.harness` by `harness.hooks`; `Harness.of(environment)` finds it."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self._profile: tuple[tuple, Profile] | None = None
        self._thresholds: tuple[str, list[Threshold]] | None = None
        self.options = self._take_options()
        self.controller: Controller | None = None
        """The master's (or the only process's) side of the run; None on a worker."""
        self.stream: Stream | None = None
        """This process's messageId stream and traffic, while a test runs here; None on a master."""
        self.shipper: LedgerShipper | None = None

    @staticmethod
    def of(environment: Environment) -> Harness:
        harness = getattr(environment, "harness", None)
        if not isinstance(harness, Harness):
            raise RuntimeError("the harness is not set up: load the scenarios with `locust -f scenarios`")
        return harness

    def refresh_options(self) -> HarnessOptions:
        """Take the options again (a test starting from the web UI may have changed them).

        Raises OptionError when a value typed in the web UI's form is not a number."""
        self.options = self._take_options()
        return self.options

    def _take_options(self) -> HarnessOptions:
        """Locust's parsed options, with no --target-rate meaning the profile's rate.messages_per_second."""
        self.options = options = HarnessOptions.from_locust(self.environment.parsed_options)
        if options.target_rate is None:
            try:
                rate = self.profile().messages_per_second
            except (ProfileError, OSError):
                return options  # option_errors names the profile's problem
            options = replace(options, target_rate=rate)
        return options

    @property
    def target_rate_source(self) -> str:
        """Where the target rate came from, for the summary: the flag or the profile."""
        given = getattr(self.environment.parsed_options, "target_rate", None)
        return "profile" if given in (None, "") else "--target-rate"

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
