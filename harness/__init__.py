"""The `harness` command: one entry point for the traffic model, sandbox, monitor and CI gate."""
