"""The harness's options on Locust's own parser, so they show in `--help`, the web UI and config files."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config_reader import TOP, ConfigError, Reader
from gate.thresholds import ThresholdError
from harness.plan import LATENCY_BUDGET
from harness.rate_curves import SHAPES
from harness.stack import check_sandbox_faults
from loadgen.dialects import DIALECTS
from loadgen.profile import DEFAULT_PROFILE, ProfileError

if TYPE_CHECKING:
    from harness.plugin import Harness

DEFAULT_TARGET_RATE = 1000.0
SANDBOX_DIALECTS = ("any", "rudderstack")  # sandbox.config.DIALECTS (the harness does not import the sandbox)
PREFLIGHT_MODES = ("fail", "warn", "off")
DEFAULT_METRICS_PORT = 9646
DELIVERY_WAIT = 30.0
"""Default seconds to wait after the test for messages in flight."""
LOSS_DEADLINE = 60.0
"""Default loss deadline of the bundled monitor. Longer than the delivery wait; the wait goes on while
messages are pending, up to the deadline, so a drop still shows as lost, never as pending. (At 20 s,
30-s runs of the default profile counted a few replay-batch messages late, unexplained: docs/ci.md.)"""
STARTUP_CHECK = 5.0
PROGRESS_INTERVAL = 5.0


@dataclass(frozen=True, slots=True)
class HarnessOptions:
    """The harness's options for one test, typed and frozen, read from Locust's parsed options.

    Taken again when a test starts, so what the web UI's form sets for that test is what it runs with.
    """

    traffic_profile: Path
    target_rate: float | None
    """None until `Harness` fills it from the profile's rate.messages_per_second."""
    load_shape: str
    duplicate_share: float | None
    bad_input_share: float | None
    replay_share: float | None
    dialect: str | None
    slo: str
    run_id: str
    seed: int | None
    write_key: str = field(repr=False)
    monitor_url: str
    sandbox_faults: str
    sandbox_dialect: str
    preflight: str
    delivery_wait: float
    loss_deadline: float
    canary_interval: float
    max_lag: float
    latency_budget: float
    startup_check: float
    progress_interval: float
    metrics_port: int | None
    """Headless /metrics port: None picks a free one, 0 turns the endpoint off."""
    report_dir: Path
    host: str
    run_time: int | None
    web_host: str

    @classmethod
    def from_locust(cls, parsed: Any) -> HarnessOptions:
        """Raises OptionError when a value typed in the web UI's form is not a number."""
        values = {f.name: getattr(parsed, f.name, None) for f in fields(cls)}
        for name, kind in NUMBERS.items():
            values[name] = _number(name, values[name], kind)
        values["traffic_profile"] = Path(values["traffic_profile"])
        values["report_dir"] = Path(values["report_dir"])
        values["host"] = values["host"] or ""
        values["web_host"] = values["web_host"] or ""
        return cls(**values)

    def profile_overrides(self) -> dict[str, float | str]:
        """The profile fields the command line overrides (--duplicate-share and friends, --dialect)."""
        names = ("duplicate_share", "bad_input_share", "replay_share", "dialect")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


GROUP_TITLE = "Harness options (delivery monitoring)"
LOCUST_ONLY_KWARGS = ("include_in_web_ui", "is_secret", "is_required", "is_multiple")


class OptionError(ValueError):
    """An option value that cannot be used, with the option's flag in the message."""


NUMBERS: dict[str, type] = {
    "target_rate": float, "duplicate_share": float, "bad_input_share": float, "replay_share": float,
    "seed": int, "delivery_wait": float, "loss_deadline": float, "canary_interval": float,
    "max_lag": float, "latency_budget": float, "startup_check": float, "progress_interval": float,
    "metrics_port": int, "run_time": int,
}  # fmt: skip
"""Options that must be numbers. The web UI's form sets options whose default is None as text."""


def _number(name: str, value: Any, kind: type) -> Any:
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    try:
        return kind(value)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise OptionError(f"--{name.replace('_', '-')} must be {noun}, got {value!r}") from None


def _adder(parser: Any):
    """`add_argument` on the harness's own argument group, with Locust's web-UI keywords and a
    `LOCUST_<NAME>` environment variable for each option, as Locust's own options have.

    argparse groups know nothing of Locust's keywords, so they are set on the action here, the way
    `LocustArgumentParser.add_argument` sets them; the action still lands in the parser's `_actions`,
    which is where the web UI and config files look.
    """
    group = parser.add_argument_group(
        GROUP_TITLE,
        "The traffic model, the delivery audit and the verdict. Each option can also be set as "
        "LOCUST_<OPTION> in the environment or as `option = value` in locust.conf / --config.",
    )

    def add(*flags: str, **kwargs: Any) -> Any:
        locust_kwargs = {k: kwargs.pop(k) for k in LOCUST_ONLY_KWARGS if k in kwargs}
        if kwargs.get("help", argparse.SUPPRESS) != argparse.SUPPRESS:
            kwargs["help"] = kwargs["help"].replace("%", "%%")  # argparse formats help with %
        kwargs.setdefault("env_var", "LOCUST_" + flags[0].lstrip("-").replace("-", "_").upper())
        action = group.add_argument(*flags, **kwargs)
        action.include_in_web_ui = locust_kwargs.get("include_in_web_ui", True)
        for name in LOCUST_ONLY_KWARGS[1:]:
            setattr(action, name, locust_kwargs.get(name, False))
        return action

    return add


def add_options(parser: Any) -> None:
    """Register the harness options on Locust's parser (the `init_command_line_parser` event)."""
    if any(g.title == GROUP_TITLE for g in getattr(parser, "_action_groups", ())):
        return  # already added (the --help hook and the scenarios both ask)
    add = _adder(parser)
    add(
        "--traffic-profile",
        default=str(DEFAULT_PROFILE),
        help="traffic profile YAML (sources, libraries, call types, duplicates, replay, rate); "
        "default: the bundled one",
    )
    add(
        "--target-rate",
        type=float,
        default=None,
        help="open-model target rate in messages/s for the whole test, across all users and workers "
        "(the load shape's peak; default: the profile's rate.messages_per_second). Users are sized "
        "from it, so Locust's --users and --spawn-rate do not apply",
    )
    add(
        "--load-shape",
        choices=sorted(SHAPES),
        default="constant",
        help="how the target rate moves over the run: "
        + "; ".join(f"{k}: {v.summary}" for k, v in SHAPES.items()),
    )
    add(
        "--duplicate-share",
        type=float,
        default=None,
        help="share of accepted messages re-sent with the same messageId (overrides the profile)",
    )
    add(
        "--bad-input-share",
        type=float,
        default=None,
        help="share of requests drawn from the bad-input catalogue (overrides the profile)",
    )
    add(
        "--replay-share",
        type=float,
        default=None,
        help="share of requests that replay historical traffic (old timestamps, big batches; overrides the profile)",
    )
    add(
        "--dialect",
        choices=DIALECTS,
        default=None,
        help="whose client libraries the sources speak as: segment or rudderstack (overrides the profile)",
    )
    add("--slo", default="", help="SLO thresholds YAML; default: the bundled thresholds")
    add("--run-id", default="", help="a name for this run (default: generated)")
    add("--seed", type=int, default=None, help="traffic seed (default: from the run id)")
    add(
        "--write-key",
        default=os.environ.get("HARNESS_WRITE_KEY", ""),
        include_in_web_ui=False,
        help="write key for --host targets (or LOCUST_WRITE_KEY / HARNESS_WRITE_KEY; never logged)",
    )
    add(
        "--monitor-url",
        default=os.environ.get("HARNESS_MONITOR_URL", ""),
        include_in_web_ui=False,  # fixed once the bundled stack or the monitor is chosen
        help="monitor that the target's webhook destination delivers to (with --host); "
        "empty with no --host: a monitor is started here",
    )
    add(
        "--sandbox-faults",
        default="",
        include_in_web_ui=False,  # fixed once the bundled stack or the monitor is chosen
        help="YAML file with a `faults:` section for the bundled sandbox (drop, duplicate, delay, 5xx, 429), "
        "to see the verdict catch them",
    )
    add(
        "--delivery-wait",
        type=float,
        default=DELIVERY_WAIT,
        help="seconds to wait after the test for messages still in flight before counting them lost",
    )
    add(
        "--loss-deadline",
        type=float,
        default=LOSS_DEADLINE,
        include_in_web_ui=False,  # fixed once the bundled stack or the monitor is chosen
        help="seconds after its send that the bundled monitor counts an undelivered message as lost "
        "(one arriving later is late); the delivery wait lasts at least this long while messages are pending",
    )
    add(
        "--sandbox-dialect",
        choices=SANDBOX_DIALECTS,
        default="any",
        help="how the bundled sandbox answers: any (every Segment-style request) or rudderstack "
        "(as RudderStack's data plane does)",
    )
    add(
        "--preflight",
        choices=PREFLIGHT_MODES,
        default="fail",
        help="before the load, send one request of every (endpoint, auth, encoding) the profile uses and "
        "print what the target answered; fail: stop with exit 2 if any kind is refused; warn: go on; off",
    )
    add(
        "--canary-interval",
        type=float,
        default=1.0,
        include_in_web_ui=False,  # fixed once the bundled stack or the monitor is chosen
        help="seconds between the bundled monitor's canaries through the sandbox to each destination (0: none)",
    )
    add(
        "--max-lag",
        type=float,
        default=1.0,
        help="a send more than this many seconds behind its intended time is dropped and counted missed",
    )
    add(
        "--latency-budget",
        type=float,
        default=LATENCY_BUDGET,
        help="seconds of answer latency the user pool absorbs at the target rate (users = requests/s x "
        "this); lower it toward the target's real latency to spend less CPU per request",
    )
    add(
        "--startup-check",
        type=float,
        default=STARTUP_CHECK,
        help="seconds after the start by which the target must have accepted a message, or the run "
        "stops with one clear message (0: never)",
    )
    add(
        "--progress-interval",
        type=float,
        default=PROGRESS_INTERVAL,
        include_in_web_ui=False,
        help="seconds between the headless delivery progress lines (0: none)",
    )
    add(
        "--metrics-port",
        type=int,
        default=None,
        include_in_web_ui=False,
        help="port of the loadgen_* /metrics endpoint in headless mode (default: a free port on "
        "127.0.0.1, or on --web-host, printed at start; 0: off; the web UI serves /metrics itself)",
    )
    add("--report-dir", default="reports", help="where the JSON summary and HTML report go")
    # Filled in by the master and passed to workers with the other custom options.
    add("--harness-wiring", default="", help=argparse.SUPPRESS, include_in_web_ui=False, env_var=None)


def option_errors(harness: Harness, *, stack_running: bool = False) -> list[str]:
    """Every problem with the harness options, each naming the option; empty when they are usable.

    With `stack_running` the bundled sandbox is up and --host is its address: the checks of what
    only matters when starting it or for an outside target are skipped.

    Loads the profile and the thresholds on `harness` as it checks them, so they are read once.
    """
    options = harness.options
    errors: list[str] = []
    if options.target_rate is not None and options.target_rate <= 0:
        errors.append(f"--target-rate must be a positive number of messages/s, got {options.target_rate:g}")
    for name in ("duplicate_share", "bad_input_share", "replay_share"):
        value = getattr(options, name)
        if value is not None and not 0 <= value <= 1:
            errors.append(f"--{name.replace('_', '-')} must be between 0 and 1, got {value:g}")
    if options.delivery_wait < 0:
        errors.append(f"--delivery-wait must be ≥ 0 seconds, got {options.delivery_wait:g}")
    if options.loss_deadline <= 0:
        errors.append(f"--loss-deadline must be > 0 seconds, got {options.loss_deadline:g}")
    if options.canary_interval < 0:
        errors.append(f"--canary-interval must be ≥ 0 seconds, got {options.canary_interval:g}")
    if options.latency_budget <= 0:
        errors.append(f"--latency-budget must be > 0 seconds, got {options.latency_budget:g}")
    if options.startup_check < 0:
        errors.append(f"--startup-check must be ≥ 0 seconds, got {options.startup_check:g}")
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
    if options.host and options.sandbox_dialect != "any" and not stack_running:
        errors.append("--sandbox-dialect applies to the bundled sandbox only; drop it or drop --host")
    if options.sandbox_faults and not stack_running:
        if options.host:
            errors.append("--sandbox-faults applies to the bundled sandbox only; drop it or drop --host")
        else:
            try:
                sandbox_faults(options.sandbox_faults, tuple(harness.profile().sources))
            except (ProfileError, OSError):
                pass  # reported above as a --traffic-profile problem
            except ValueError as exc:
                errors.append(f"--sandbox-faults {exc}")
    if options.host and not options.write_key and not stack_running:
        errors.append("--host needs a write key: pass --write-key or set HARNESS_WRITE_KEY")
    return errors


def sandbox_faults(path: str, sources: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The `faults:` mapping of a --sandbox-faults file; with `sources`, checked by the sandbox itself
    and its complaint pinned to the user's file and line (not the stack's temporary config)."""
    document, reader = Reader.load(path)
    if not isinstance(document, dict) or not isinstance(document.get("faults"), dict):
        raise reader.fail("faults", "expected a mapping with a `faults:` section, as in sandbox/default.yaml")
    reader.mapping(document, TOP, ("faults",))
    if sources is not None:
        problem = check_sandbox_faults(sources, document["faults"])
        if problem is not None:
            key, _sep, rest = problem.partition(": ")
            line = next((reader.lines[k] for k in _key_and_parents(key) if k in reader.lines), None)
            where = f"{path}:{line}" if line else path
            raise ConfigError(f"{where}: {key}: {rest}" if rest else f"{where}: {problem}")
    return document["faults"]


def _key_and_parents(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def exit_on_bad_options(harness: Harness) -> None:
    """Stop before any traffic when an option is unusable, naming each problem."""
    errors = option_errors(harness)
    if errors:
        for error in errors:
            sys.stderr.write(f"locust: error: {error}\n")
        raise SystemExit(2)
