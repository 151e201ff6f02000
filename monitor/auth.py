"""The bearer token of the monitor's control API (`/api/*`), read from HARNESS_MONITOR_TOKEN.

Webhooks keep their per-destination signatures, `/metrics` and `/healthz` stay open. A monitor
bound beyond loopback refuses to start without a token (`check_bind`).
"""

from __future__ import annotations

import hmac
import ipaddress
import os

TOKEN_ENV = "HARNESS_MONITOR_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether `host` names only this machine (a hostname other than localhost counts as not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_from_env() -> str | None:
    """The token, or None when the variable is unset or empty."""
    return os.environ.get(TOKEN_ENV) or None


def check_bind(host: str, token: str | None) -> str | None:
    """The reason the monitor must not start (a non-loopback bind without a token), or None."""
    if token is None and not is_loopback(host):
        return (
            f"--host {host} is not a loopback address, so the control API needs a bearer token: "
            f"set {TOKEN_ENV} (e.g. to the output of `openssl rand -hex 16`)"
        )
    return None


def authorized(token: str | None, header: str | None) -> bool:
    """Whether an `Authorization` header carries `token` (always, when no token is set)."""
    if token is None:
        return True
    if not header or header[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(header[7:].strip().encode("utf-8", "replace"), token.encode())
