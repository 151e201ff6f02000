"""The delivery monitor: receiver, exact audit, canary prober, destination probes, /metrics, summary."""
