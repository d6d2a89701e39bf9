"""Ray job entrypoint: supervised training of the tool-calling TRM (`python jobs/train_fc.py --config ...`)."""

import sys

from recursa.cli import main

if __name__ == "__main__":
    main(["train", "fc", *sys.argv[1:]])
