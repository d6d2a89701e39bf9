"""Ray job entrypoint: LoRA training of an LLM (`python jobs/train_llm.py --config jobs/configs/llm_sft.yaml`)."""

import sys

from recursa.cli import main

if __name__ == "__main__":
    main(["train", "llm", *sys.argv[1:]])
