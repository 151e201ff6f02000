"""The harness's options on Locust's own parser, so they show in `--help`, the web UI and config files."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config_reader import TOP, Reader
from gate.thresholds import ThresholdError
from harness.plan import LATENCY_BUDGET
from harness.rate_curves import SHAPES
from loadgen.profile import DEFAULT_PROFILE, ProfileError

if TYPE_CHECKING:
    from harness.plugin import Harness

DEFAULT_TARGET_RATE = 1000.0
DEFAULT_METRICS_PORT = 9646


@dataclass(frozen=True, slots=True)
class HarnessOptions:
    """The harness's options for one test, typed and frozen, read from Locust's parsed options.

    Taken again when a test starts, so what the web UI's form sets for that test is what it runs with.
    """

    traffic_profile: Path
    target_rate: float
    load_shape: str
    duplicate_share: float | None
    bad_input_share: float | None
    replay_share: float | None
    slo: str
    run_id: str
    seed: int | None
    write_key: str = field(repr=False)
    monitor_url: str
    sandbox_faults: str
    delivery_wait: float
    loss_deadline: float
    canary_interval: float
    monitor_workers: int
    max_lag: float
    latency_budget: float
    metrics_port: int
    report_dir: Path
    host: str
    run_time: int | None
    web_host: str

    @classmethod
    def from_locust(cls, parsed: Any) -> HarnessOptions:
        values = {f.name: getattr(parsed, f.name, None) for f in fields(cls)}
        values["traffic_profile"] = Path(values["traffic_profile"])
        values["report_dir"] = Path(values["report_dir"])
        values["host"] = values["host"] or ""
        values["web_host"] = values["web_host"] or ""
        return cls(**values)

    def profile_overrides(self) -> dict[str, float]:
        """The profile fields the command line overrides (--duplicate-share and friends)."""
        names = ("duplicate_share", "bad_input_share", "replay_share")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


def add_options(parser: Any) -> None:
    """Register the harness options on Locust's parser (the `init_command_line_parser` event)."""
    # On the parser itself, not a group: only Locust's own add_argument knows include_in_web_ui.
    group = parser
    group.add_argument(
        "--traffic-profile",
        default=str(DEFAULT_PROFILE),
        help="traffic profile YAML (sources, libraries, call types, duplicates, replay); default: the bundled one",
    )
    group.add_argument(
        "--target-rate",
        type=float,
        default=DEFAULT_TARGET_RATE,
        help="open-model target rate in messages/s for the whole test, across all users and workers "
        f"(the load shape's peak; default {DEFAULT_TARGET_RATE:g})",
    )
    group.add_argument(
        "--load-shape",
        choices=sorted(SHAPES),
        default="constant",
        help="how the target rate moves over the run: "
        + "; ".join(f"{k}: {v.summary}" for k, v in SHAPES.items()),
    )
    group.add_argument(
        "--duplicate-share",
        type=float,
        default=None,
        help="share of accepted messages re-sent with the same messageId (overrides the profile)",
    )
    group.add_argument(
        "--bad-input-share",
        type=float,
        default=None,
        help="share of requests drawn from the bad-input catalogue (overrides the profile)",
    )
    group.add_argument(
        "--replay-share",
        type=float,
        default=None,
        help="share of requests that replay historical traffic (old timestamps, big batches; overrides the profile)",
    )
    group.add_argument("--slo", default="", help="SLO thresholds YAML; default: the bundled thresholds")
    group.add_argument("--run-id", default="", help="a name for this run (default: generated)")
    group.add_argument("--seed", type=int, default=None, help="traffic seed (default: from the run id)")
    group.add_argument(
        "--write-key",
        default="",
        env_var="HARNESS_WRITE_KEY",
        include_in_web_ui=False,
        help="write key for --host targets (or env HARNESS_WRITE_KEY; never logged)",
    )
    group.add_argument(
        "--monitor-url",
        default="",
        env_var="HARNESS_MONITOR_URL",
        help="monitor that the target's webhook destination delivers to (with --host); "
        "empty with no --host: a monitor is started here",
    )
    group.add_argument(
        "--sandbox-faults",
        default="",
        help="YAML file with a `faults:` section for the bundled sandbox (drop, duplicate, delay, 5xx, 429), "
        "to see the verdict catch them",
    )
    group.add_argument(
        "--delivery-wait",
        type=float,
        default=30.0,
        help="seconds to wait after the test for messages still in flight before counting them lost",
    )
    group.add_argument(
        "--loss-deadline",
        type=float,
        default=60.0,
        help="seconds after its send that the bundled monitor counts an undelivered message as lost",
    )
    group.add_argument(
        "--canary-interval",
        type=float,
        default=1.0,
        help="seconds between the bundled monitor's canaries through the sandbox to each destination (0: none)",
    )
    group.add_argument(
        "--monitor-workers",
        type=int,
        default=0,
        help="processes of the bundled monitor (0: sized to this machine's cores, one per 8)",
    )
    group.add_argument(
        "--max-lag",
        type=float,
        default=1.0,
        help="a send more than this many seconds behind its intended time is dropped and counted missed",
    )
    group.add_argument(
        "--latency-budget",
        type=float,
        default=LATENCY_BUDGET,
        help="seconds of answer latency the user pool absorbs at the target rate (users = requests/s x "
        "this); lower it toward the target's real latency to spend less CPU per request",
    )
    group.add_argument(
        "--metrics-port",
        type=int,
        default=DEFAULT_METRICS_PORT,
        help="port of the loadgen_* /metrics endpoint in headless mode (0: off; the web UI serves /metrics)",
    )
    group.add_argument("--report-dir", default="reports", help="where the JSON summary and HTML report go")
    # Filled in by the master and passed to workers with the other custom options.
    group.add_argument("--harness-wiring", default="", help="internal", include_in_web_ui=False)


def option_errors(harness: Harness) -> list[str]:
    """Every problem with the harness options, each naming the option; empty when they are usable.

    Loads the profile and the thresholds on `harness` as it checks them, so they are read once.
    """
    options = harness.options
    errors: list[str] = []
    if options.target_rate <= 0:
        errors.append(f"--target-rate must be a positive number of messages/s, got {options.target_rate:g}")
    for name in ("duplicate_share", "bad_input_share", "replay_share"):
        value = getattr(options, name)
        if value is not None and not 0 <= value <= 1:
            errors.append(f"--{name.replace('_', '-')} must be between 0 and 1, got {value:g}")
    if options.delivery_wait < 0:
        errors.append(f"--delivery-wait must be ≥ 0 seconds, got {options.delivery_wait:g}")
    if options.loss_deadline <= 0:
        errors.append(f"--loss-deadline must be > 0 seconds, got {options.loss_deadline:g}")
    if options.monitor_workers < 0:
        errors.append(f"--monitor-workers must be ≥ 0, got {options.monitor_workers}")
    if options.canary_interval < 0:
        errors.append(f"--canary-interval must be ≥ 0 seconds, got {options.canary_interval:g}")
    if options.latency_budget <= 0:
        errors.append(f"--latency-budget must be > 0 seconds, got {options.latency_budget:g}")
    if options.max_lag <= 0:
        errors.append(f"--max-lag must be > 0 seconds, got {options.max_lag:g}")
    try:
        harness.profile()
    except ProfileError as exc:
        errors.append(f"--traffic-profile: {exc}")
    except OSError as exc:
        errors.append(f"--traffic-profile {options.traffic_profile}: cannot read it ({exc.strerror or exc})")
    if options.slo:
        try:
            harness.thresholds()
        except ThresholdError as exc:
            errors.append(f"--slo: {exc}")
        except OSError as exc:
            errors.append(f"--slo {options.slo}: cannot read it ({exc.strerror or exc})")
    if options.sandbox_faults:
        if options.host:
            errors.append("--sandbox-faults applies to the bundled sandbox only; drop it or drop --host")
        else:
            try:
                sandbox_faults(options.sandbox_faults)
            except ValueError as exc:
                errors.append(f"--sandbox-faults: {exc}")
    if options.host and not options.write_key:
        errors.append("--host needs a write key: pass --write-key or set HARNESS_WRITE_KEY")
    return errors


def sandbox_faults(path: str) -> dict[str, Any]:
    """The `faults:` mapping of a --sandbox-faults file (the sandbox checks its contents)."""
    document, reader = Reader.load(path)
    if not isinstance(document, dict) or not isinstance(document.get("faults"), dict):
        raise reader.fail("faults", "expected a mapping with a `faults:` section, as in sandbox/default.yaml")
    reader.mapping(document, TOP, ("faults",))
    return document["faults"]


def exit_on_bad_options(harness: Harness) -> None:
    """Stop before any traffic when an option is unusable, naming each problem."""
    errors = option_errors(harness)
    if errors:
        for error in errors:
            sys.stderr.write(f"locust: error: {error}\n")
        raise SystemExit(2)
