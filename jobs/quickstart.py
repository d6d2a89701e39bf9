"""Ray job entrypoint: the quickstart (`python jobs/quickstart.py`)."""

import sys

from recursa.cli import main

if __name__ == "__main__":
    main(["quickstart", *sys.argv[1:]])
