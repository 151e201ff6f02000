"""The load shape: users sized for the peak of --target-rate, paced on the --load-shape curve."""

from loadgen.plugin import hooks  # noqa: F401  (plugs the harness into Locust's events)
from loadgen.plugin.loadshape import TargetRateShape


class TrafficShape(TargetRateShape):
    """constant, ramp, steps, spike, diurnal or soak, chosen with --load-shape."""
