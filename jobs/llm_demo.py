"""Ray job entrypoint: the LLM demo, SFT then GRPO on the tiny model (`python jobs/llm_demo.py`)."""

import sys

from recursa.cli import main

if __name__ == "__main__":
    main(["llm", "demo", *sys.argv[1:]])
