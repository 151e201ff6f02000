"""`python -m sandbox ...`: the same as `harness sandbox ...`, without loading the other parts."""

import argparse

from sandbox import cli

parser = argparse.ArgumentParser(prog="python -m sandbox", description=cli.__doc__)
cli.add_arguments(parser)
raise SystemExit(cli.run(parser.parse_args()))
