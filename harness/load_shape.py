"""The one LoadTestShape of the scenarios: users sized for the peak rate, ended at the run time."""

from __future__ import annotations

import logging

from locust import LoadTestShape

from harness.plugin import Harness
from harness.rate_curves import shape_duration

log = logging.getLogger("harness")


class TargetRateShape(LoadTestShape):
    """Spawns each source's users (sized by the traffic plan) and stops at `-t` or the shape's end.

    The users pace themselves on the selected `--load-shape` curve, so the user count stays fixed
    while the message rate follows the curve.
    """

    abstract = True
    use_common_options = True

    problems: tuple[str, ...] = ()

    def reset_time(self) -> None:
        """Locust calls this as a test starts (headless or from the web UI's form), before the first
        tick: the moment to take the form's options and size the users for its rate."""
        super().reset_time()
        runner = getattr(self, "runner", None)
        controller = Harness.of(runner.environment).controller if runner is not None else None
        if controller is not None:
            self.problems = tuple(controller.prepare_test())
            for problem in self.problems:
                log.error("the test cannot start: %s", problem)

    def tick(self) -> tuple[int, float, list] | None:
        if self.problems:
            return None
        harness = Harness.of(self.runner.environment)
        duration = shape_duration(harness.options.load_shape, harness.options.run_time)
        if duration is not None and self.get_run_time() >= duration:
            return None
        counts = harness.controller.user_counts()
        for user_class, count in counts.items():
            user_class.fixed_count = count
        total = sum(counts.values())
        return total, float(total), list(counts)
