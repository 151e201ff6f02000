"""The one LoadTestShape of the scenarios: users sized for the peak rate, ended at the run time."""

from __future__ import annotations

from locust import LoadTestShape

from harness.plugin import Harness
from harness.rate_curves import shape_duration


class TargetRateShape(LoadTestShape):
    """Spawns each source's users (sized by the traffic plan) and stops at `-t` or the shape's end.

    The users pace themselves on the selected `--load-shape` curve, so the user count stays fixed
    while the message rate follows the curve.
    """

    abstract = True
    use_common_options = True

    def tick(self) -> tuple[int, float, list] | None:
        harness = Harness.of(self.runner.environment)
        duration = shape_duration(harness.options.load_shape, harness.options.run_time)
        if duration is not None and self.get_run_time() >= duration:
            return None
        counts = harness.controller.user_counts()
        for user_class, count in counts.items():
            user_class.fixed_count = count
        total = sum(counts.values())
        return total, float(total), list(counts)
