"""Runs run_pretrain.main under torchrun, then each rank saves its own target encoder (for the 2-process test)."""

import os
import sys

from safetensors.torch import save_file

from prjepa import pretraining as run_pretrain

if __name__ == "__main__":
    trainer = run_pretrain.main(sys.argv[1:])
    rank = trainer.args.process_index
    state = {key: value.contiguous() for key, value in trainer.model.target_encoder.state_dict().items()}
    save_file(state, os.path.join(trainer.args.output_dir, f"target-rank{rank}.safetensors"))
