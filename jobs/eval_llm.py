"""Ray job entrypoint: held-out evaluation of an LLM agent (`python jobs/eval_llm.py --adapter ...`)."""

import sys

from recursa.cli import main

if __name__ == "__main__":
    main(["eval", "llm", *sys.argv[1:]])
