"""Ray job entrypoint: population-based training of the gift policy (`python jobs/tune_gift.py --config ...`)."""

import sys

from recursa.cli import main

if __name__ == "__main__":
    main(["tune", "gift", *sys.argv[1:]])
