"""Ray job entrypoint: BFCL scores of a tool-calling TRM (`python jobs/eval_bfcl.py --checkpoint ...`)."""

import sys

from recursa.cli import main

if __name__ == "__main__":
    main(["eval", "bfcl", *sys.argv[1:]])
