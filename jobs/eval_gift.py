"""Ray job entrypoint: held-out evaluation of a gift policy (`python jobs/eval_gift.py --checkpoint ...`)."""

import sys

from recursa.cli import main

if __name__ == "__main__":
    main(["eval", "gift", *sys.argv[1:]])
