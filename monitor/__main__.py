"""`python -m monitor` = `harness monitor`, for running the monitor without the other parts."""

import argparse
import sys

from monitor import cli

parser = argparse.ArgumentParser(prog="monitor", description=cli.__doc__)
cli.add_arguments(parser)
sys.exit(cli.run(parser.parse_args()))
