"""Ray job entrypoint: ASHA over the tool-calling TRM (`python jobs/tune_fc.py --config ...`)."""

import sys

from recursa.cli import main

if __name__ == "__main__":
    main(["tune", "fc", *sys.argv[1:]])
