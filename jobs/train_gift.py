"""Ray job entrypoint: PPO on the gift environment (`python jobs/train_gift.py --config ...`)."""

import sys

from recursa.cli import main

if __name__ == "__main__":
    main(["train", "gift", *sys.argv[1:]])
