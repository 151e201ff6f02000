"""A small typed client for the monitor's API, used by the scenarios and tests."""

from __future__ import annotations

import os
from typing import Any, cast

import httpx

from gate.summary_format import Summary
from loadgen.ledger import ForeignIds, LedgerDelta
from monitor.auth import TOKEN_ENV


class MonitorError(RuntimeError):
    """The monitor answered with an error (the message is its `code: message`) or did not answer."""


class MonitorClient:
    """`MonitorClient("http://127.0.0.1:8090")`: post ledger deltas, read the summary and lost ids.

    `token` is the monitor's bearer token (default: the HARNESS_MONITOR_TOKEN environment variable).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.Client(timeout=timeout)
        token = token or os.environ.get(TOKEN_ENV)
        if token:
            self._client.headers["authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> MonitorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client.request(method, f"{self.base_url}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise MonitorError(
                f"{method} {self.base_url}{path}: no answer ({type(exc).__name__}: {exc})"
            ) from None
        return self._check(response)

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                doc = response.json()
                detail = f"{doc.get('code')}: {doc.get('message')}"
            except ValueError:
                detail = response.text[:200]
            raise MonitorError(
                f"{response.request.method} {response.request.url.path} -> {response.status_code} {detail}"
            )
        try:
            return response.json()
        except ValueError:
            raise MonitorError(
                f"{response.request.url} answered {response.status_code} without JSON"
            ) from None

    def post_ledger(self, delta: LedgerDelta) -> None:
        """Send one ledger delta (`POST /api/ledger`)."""
        self._request(
            "POST", "/api/ledger", content=delta.to_wire(), headers={"content-type": "application/json"}
        )

    def register_foreign(self, registration: ForeignIds) -> dict[str, Any]:
        """Register foreign messageIds for a run (`POST /api/foreign`); answers the counts taken."""
        return self._request(
            "POST", "/api/foreign", content=registration.to_wire(), headers={"content-type": "application/json"}
        )

    def summary(self, run: int | str | None = None) -> Summary:
        """The run summary (`GET /api/summary`), of one run (id or name) or of all runs."""
        params = {"run": str(run)} if run is not None else None
        return cast(Summary, self._request("GET", "/api/summary", params=params))

    def lost(self, destination: str, limit: int = 100, run: int | str | None = None) -> list[dict[str, Any]]:
        """Lost messages of one destination (`GET /api/lost`)."""
        params: dict[str, str] = {"destination": destination, "limit": str(limit)}
        if run is not None:
            params["run"] = str(run)
        return self._request("GET", "/api/lost", params=params)["lost"]

    def set_behaviour(self, destination: str, behaviour: dict[str, Any]) -> dict[str, Any]:
        """Change a destination's behaviour (`PUT /api/destinations/<name>/behaviour`)."""
        return self._request("PUT", f"/api/destinations/{destination}/behaviour", json=behaviour)
