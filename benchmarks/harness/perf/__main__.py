"""``python -m benchmarks.harness.perf``."""

import sys

from benchmarks.harness.perf.cli import main

if __name__ == "__main__":
    sys.exit(main())
