"""The load shape: users sized for the peak of --target-rate, paced on the --load-shape curve."""

from harness import hooks  # noqa: F401  (plugs the harness into Locust's events)
from harness.load_shape import TargetRateShape


class TrafficShape(TargetRateShape):
    """constant, ramp, steps, spike, diurnal or soak, chosen with --load-shape."""
