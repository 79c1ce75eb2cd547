"""Runs run_pretrain.main under torchrun with SIGTERM delivered to rank 1 alone during the second optimizer step (the
2-process preemption test)."""

import faulthandler
import os
import signal
import sys

from transformers import TrainerCallback

from prjepa import pretraining as run_pretrain
from prjepa import trainer as trainer_module


class SignalRankOneDuringStepTwo(TrainerCallback):
    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == 1 and args.process_index == 1:
            os.kill(os.getpid(), signal.SIGTERM)


class PreemptedTrainer(trainer_module.PrJepaTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_callback(SignalRankOneDuringStepTwo())


if __name__ == "__main__":
    # A rank left waiting in a collective ends itself (torchrun puts each worker in a session of its own, out of the
    # test's reach), printing where it waited.
    faulthandler.dump_traceback_later(90, exit=True)
    trainer_module.PrJepaTrainer = PreemptedTrainer
    try:
        run_pretrain.main(sys.argv[1:])
    except SystemExit as stop:  # each rank's own way out, which the launcher's summary does not show
        print(f"rank {os.environ['RANK']} stopped with exit code {stop.code}", flush=True)
        raise
