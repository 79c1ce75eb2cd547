"""`PrJepaTrainer`: the HF `Trainer` for `PrJepaForPreTraining`.

On top of the stock loop it updates the EMA target encoder after every optimizer step, logs both losses, λ, the EMA
momentum and a collapse signal (warning once if it shows a collapse), stops on a non-finite loss before it reaches the
weights, keeps the loss weighting out of weight decay, and positions the counter-based masking collator so that a
resumed run sees exactly the masks of an uninterrupted one.
"""

import contextlib
import copy
import glob
import json
import logging
import math
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from functools import partial

import torch
import transformers.trainer
from huggingface_hub import HfApi, ModelCard
from torch import nn
from transformers import Trainer, TrainerCallback, TrainerState, TrainingArguments
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, EvalLoopOutput, HubStrategy

from configuration_prjepa import PrJepaConfig
from modeling_prjepa import PrJepaForPreTraining

from .collator import DataCollatorForPrJepa
from .model_card import pretraining_model_card, rank_collapse
from .rankme import has_no_variance, rankme
from .resume import RUN_SETTINGS
from .snapshots import SNAPSHOT_PREFIX, SNAPSHOT_STATE, check_snapshot_steps, snapshot_dir
from .utils import STOP_SIGNALS, atomic_path, write_atomically

logger = logging.getLogger(__name__)

# Per-micro-batch values averaged over each logging window (and over the evaluation set); L_JEPA over the micro-batches
# that measured it (`jepa_measured` is 1 for each): a batch without JEPA targets reports an unmeasured 0.
WINDOW_KEYS = ("jepa_loss", "mlm_loss", "jepa_weight", "jepa_measured")


class SnapshotCallback(TrainerCallback):
    """Saves the model and tokenizer after each of `args.snapshot_steps` (step 0 before any update; a value below 1 a
    ratio of the run's steps, `resolve_snapshot_steps`) into `snapshot_dir(output_dir, step)`, with `SNAPSHOT_STATE`
    recording the step and the tokens seen.

    A snapshot is written under a temporary name and renamed when complete, so a folder that exists is whole; one
    that exists is kept (a resumed run does not rewrite the steps it already passed).
    """

    def __init__(self):
        self.steps: list[int] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.steps = check_snapshot_steps(args.snapshot_steps, state.max_steps)
        if state.global_step == 0:
            self._save(args, state, **kwargs)

    def on_step_end(self, args, state, control, **kwargs):
        self._save(args, state, **kwargs)

    def _save(self, args, state, model=None, processing_class=None, **kwargs) -> None:
        final = snapshot_dir(args.output_dir, state.global_step)
        if state.global_step not in self.steps or not state.is_world_process_zero or os.path.isdir(final):
            return
        unfinished = final + ".partial"
        shutil.rmtree(unfinished, ignore_errors=True)
        model.save_pretrained(unfinished)
        if processing_class is not None:
            processing_class.save_pretrained(unfinished)
        with open(os.path.join(unfinished, SNAPSHOT_STATE), "w") as file:
            json.dump({"step": state.global_step, "num_input_tokens_seen": state.num_input_tokens_seen}, file)
        os.replace(unfinished, final)


class PreemptionCallback(TrainerCallback):
    """On SIGTERM (how cluster schedulers preempt), SIGINT (Ctrl-C) or SIGHUP (a closed terminal) during training:
    finish the current optimizer step, save a checkpoint and stop; `received` then names the signal, and the caller
    exits non-zero so that a rerun resumes exactly. The previous handlers come back when training ends or raises.

    Every process stops after the same step: a signal counts once the trainer's per-micro-batch all-reduce has shared
    it (`pending` / `agree`), since a process that stopped alone would leave the others waiting in the next
    collective, and its checkpoint would miss their state."""

    SIGNALS = STOP_SIGNALS

    def __init__(self):
        self.received: signal.Signals | None = None
        self._caught: signal.Signals | None = None
        self._previous: dict[signal.Signals, object] = {}

    def _handle(self, signum, frame) -> None:
        self._caught = signal.Signals(signum)

    def pending(self, device: torch.device) -> torch.Tensor:
        """One entry per signal of `SIGNALS`: 1 where this process caught it."""
        return torch.tensor([float(self._caught == number) for number in self.SIGNALS], device=device)

    def agree(self, counts: torch.Tensor) -> None:
        """`counts`: `pending` summed over the processes, the same on every one."""
        if self.received is None:
            self.received = next((n for n, count in zip(self.SIGNALS, counts.tolist()) if count > 0), None)

    def on_train_begin(self, args, state, control, **kwargs):
        self.received = self._caught = None  # a signal that stopped an earlier `train()` call does not stop this one
        self._previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}

    def on_step_end(self, args, state, control, **kwargs):
        if self.received is not None:
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        self.restore()

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}


def _ignore_stop_signals_then(worker_init: Callable[[int], None] | None, worker_id: int) -> None:
    """A DataLoader worker's start. A scheduler's SIGTERM or a terminal's Ctrl-C reaches the whole process group, and
    stopping is the main process's to do (`PreemptionCallback`): a worker the signal killed first would crash the run
    before its checkpoint is saved. The main process still shuts its workers down as usual."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    if worker_init is not None:
        worker_init(worker_id)


def _workers_ignoring_stop_signals(loader: torch.utils.data.DataLoader) -> torch.utils.data.DataLoader:
    iterated = getattr(loader, "base_dataloader", loader)  # accelerate's prepared loader iterates the one it wraps
    if iterated.num_workers > 0:
        iterated.worker_init_fn = partial(_ignore_stop_signals_then, iterated.worker_init_fn)
    return loader


class RunSettingsCallback(TrainerCallback):
    """Copies the run's settings (`prjepa.resume`) into every checkpoint, so that resuming a checkpoint moved or
    resumed into another output directory still checks them."""

    def on_save(self, args, state, control, **kwargs):
        recorded = os.path.join(args.output_dir, RUN_SETTINGS)
        if state.is_world_process_zero and os.path.exists(recorded):
            checkpoint = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            with open(recorded) as file:  # after the trainer state: a stopped copy must not look complete
                write_atomically(os.path.join(checkpoint, RUN_SETTINGS), file.read())


class TargetEncoderEmaCallback(TrainerCallback):
    """target ← m·target + (1 − m)·online after every optimizer step (not every micro-batch), m from the global step.

    The momentum is a pure function of the step just taken, so a resumed run continues the same schedule.
    """

    def on_step_end(self, args, state, control, model=None, **kwargs):
        model.update_target_encoder(momentum_of_last_step(model.config, state))


# `Trainer` uploads the output directory but `_*` and `checkpoint-*` (patterns written into `push_to_hub` and
# `_push_from_checkpoint`). A run folder also holds full-model snapshots, folders left half-written, the run
# settings (local paths) and `training_args.bin` (a pickle of this package's arguments class, with local paths, that
# only this package can load; the model card lists the hyper-parameters): none of them is the pushed model.
HUB_IGNORE_PATTERNS = (f"{SNAPSHOT_PREFIX}*", "*.partial", "*.partial/*", RUN_SETTINGS, TRAINING_ARGS_NAME)


class _IgnoringHfApi(HfApi):
    def __init__(self, ignore: tuple[str, ...]):
        super().__init__(library_name="transformers", library_version=transformers.__version__)
        self.ignore = ignore

    def upload_folder(self, *, ignore_patterns: list[str] | str | None = None, **kwargs):
        ignore_patterns = [ignore_patterns] if isinstance(ignore_patterns, str) else list(ignore_patterns or [])
        return super().upload_folder(ignore_patterns=[*ignore_patterns, *self.ignore], **kwargs)


@contextlib.contextmanager
def _uploads_ignoring(patterns: tuple[str, ...]) -> Iterator[None]:
    """Extends the ignore patterns of `Trainer`'s uploads, which it hard-codes, by handing it an `HfApi` that adds
    them (the one Trainer's `hf_api()` gives, tagged alike)."""
    api = _IgnoringHfApi(patterns)
    original = transformers.trainer.hf_api
    transformers.trainer.hf_api = lambda: api
    try:
        yield
    finally:
        transformers.trainer.hf_api = original


def check_training_options(args: TrainingArguments, sharded: bool = False) -> None:
    """Raises `ValueError` for Trainer options PrJEPA pretraining cannot honour: each would be silently ignored, or
    would break the exact resume every run is promised. `sharded`: FSDP or DeepSpeed is on, however it was set (the
    Trainer also takes them from accelerate's configuration)."""
    if sharded or args.fsdp or args.deepspeed:
        raise ValueError(
            "FSDP and DeepSpeed are not supported for PrJEPA pretraining: the EMA update reads the online encoder's "
            "whole parameters, and an exact resume needs the optimizer and random-state files DDP checkpoints hold. "
            "Train with DDP, one process per GPU: `accelerate launch --multi_gpu --num_processes N run_pretrain.py …` "
            "(without an FSDP or DeepSpeed accelerate config) or `torchrun --nproc_per_node N run_pretrain.py …`."
        )
    if args.label_smoothing_factor > 0:
        raise ValueError(
            f"--label_smoothing_factor {args.label_smoothing_factor} is not applied by PrJEPA's losses (the model "
            "computes its MLM loss itself). Drop the option."
        )
    if args.train_sampling_strategy == "group_by_length":
        raise ValueError(
            "--train_sampling_strategy group_by_length shuffles with the global random stream before a resumed run "
            "restores it, so a run resumed past its first epoch would not be the run it continues. Use random (the "
            "default)."
        )
    if args.auto_find_batch_size:
        raise ValueError(
            "--auto_find_batch_size starts training again at half the batch size after an out-of-memory error, from "
            "the weights the failed attempt had reached: the run would train at another batch size than its settings "
            "record, and could be neither resumed nor repeated exactly. Drop it and pass a "
            "--per_device_train_batch_size that fits (a larger --gradient_accumulation_steps keeps the effective "
            "batch)."
        )
    if args.save_only_model:
        raise ValueError(
            "--save_only_model saves checkpoints without the optimizer, schedule and random state, from which a "
            "stopped run cannot resume. Drop it (the final model in --output_dir holds the weights alone anyway); "
            "--save_total_limit bounds the disk the checkpoints take."
        )


def momentum_of_last_step(config: PrJepaConfig, state: TrainerState) -> float:
    """The EMA momentum of the optimizer step just taken (0-based step index, so the first update uses the start)."""
    return config.ema_momentum(state.global_step - 1, state.max_steps)


class PrJepaTrainer(Trainer):
    """`Trainer` for `PrJepaForPreTraining` (hybrid or MLM-only), with `DataCollatorForPrJepa` batches.

    Logged at every logging step, averaged over the window: `jepa_loss`, `mlm_loss`, `jepa_weight` (λ); of the last
    step: `ema_momentum` and `effective_rank` (RankMe of the target encoder's mean-pooled embeddings of the last batch,
    as the training step computed them; the online encoder's of the masked batch for `objective="mlm"`; a value falling
    toward 1 means the representations collapse, 0 that every embedding is identical). The effective rank is the main
    process's batch: other ranks' logs are discarded, so they skip it. A logged rank that stays below half its first
    value (`model_card.rank_collapse`) is warned about once per `train()` call and noted in the model card. Training
    logs and the end-of-training summary add `train_seconds`, the training time over every call of a resumed run
    (`train_runtime` is the last call's). Evaluation adds `eval_mlm_loss`, `eval_perplexity`, `eval_jepa_loss` and
    `eval_mlm_probability`, the masking rate of its MLM masks (`--eval_mlm_probability`, else the model's).
    """

    def __init__(self, model: PrJepaForPreTraining, *args, **kwargs):
        super().__init__(model, *args, **kwargs)
        if not isinstance(self.model, PrJepaForPreTraining):
            raise ValueError(f"PrJepaTrainer trains a PrJepaForPreTraining model, got {type(self.model).__name__}.")
        check_training_options(self.args, sharded=self.is_fsdp_enabled or self.is_deepspeed_enabled)
        if (
            isinstance(self.data_collator, DataCollatorForPrJepa)
            and self.args.dataloader_persistent_workers
            and self.args.dataloader_num_workers > 0
        ):
            raise ValueError(
                "--dataloader_persistent_workers is not supported with DataCollatorForPrJepa: workers that outlive an "
                "epoch keep their own copy of the collator, so its masks stop following (epoch, batch). A resumed run "
                "would no longer repeat the same masks, and each evaluation would see new ones. Drop the option "
                "(--dataloader_num_workers alone is fine)."
            )
        self.hybrid = self.model.config.objective == "hybrid"
        if self.hybrid:
            self.add_callback(TargetEncoderEmaCallback())
        if self.args.snapshot_steps:  # after the EMA update, so a snapshot's target encoder is that step's
            self.add_callback(SnapshotCallback())
        self.add_callback(RunSettingsCallback())
        self.preemption = PreemptionCallback()
        self.add_callback(self.preemption)
        self._seconds_before_this_call: float | None = None
        self._evaluation_masking_rate: float | None = None
        self._start_measuring()

    def train(self, *args, **kwargs):
        # A notebook may call `train()` again on this trainer (e.g. to resume after an interrupt or a non-finite
        # loss): nothing measured in the earlier call may leak into this one's logs or warnings.
        self._seconds_before_this_call = None
        self._start_measuring()
        try:
            return super().train(*args, **kwargs)
        finally:  # `on_train_end` is not reached when training raises, and a process Ctrl-C cannot stop is stuck
            self.preemption.restore()

    def planned_steps(self) -> int:
        """The run's number of optimizer steps, as `train()` will compute it (epoch-based runs from the dataloader)."""
        return self.set_initial_training_values(self.args, self.get_train_dataloader())[-1]

    def push_to_hub(self, *args, **kwargs):
        with _uploads_ignoring(HUB_IGNORE_PATTERNS):
            return super().push_to_hub(*args, **kwargs)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        # transformers copies the checkpoint's config and weights into output_dir and uploads that; without the model
        # code save_pretrained put beside them, the repo's auto_map would name files it lacks until the final push.
        if self.is_world_process_zero() and self.args.hub_strategy != HubStrategy.END:
            for code in glob.glob(os.path.join(checkpoint_folder, "*.py")):
                shutil.copy(code, self.args.output_dir)
        with _uploads_ignoring(HUB_IGNORE_PATTERNS):
            super()._push_from_checkpoint(checkpoint_folder)

    def _start_measuring(self) -> None:
        self._windows = {mode: self._empty_window() for mode in ("train", "eval")}
        self._last_pooled_embeddings: torch.Tensor | None = None
        self._collapse_reported = False

    def _empty_window(self) -> dict:
        return {"sums": torch.zeros(len(WINDOW_KEYS), device=self.args.device), "count": 0}

    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        # Decaying w (or the uncertainty log-variances) would pull λ toward 1/2 regardless of the losses.
        return [name for name in super().get_decay_parameter_names(model) if not name.startswith("loss_weighting.")]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        window = self._windows["train" if model.training else "eval"]
        no_jepa = outputs.mlm_loss.new_zeros(())
        values = [
            outputs.jepa_loss if self.hybrid else no_jepa,
            outputs.mlm_loss,
            outputs.jepa_weight,
            outputs.has_jepa_targets if self.hybrid else no_jepa,
        ]
        stacked = torch.stack([value.detach().float() for value in values])
        if model.training:
            window["sums"] += stacked
            window["count"] += 1
            if len(outputs.pooled_embeddings) > 1:  # one sequence (an epoch's last batch) has no rank to measure
                self._last_pooled_embeddings = outputs.pooled_embeddings
        else:
            # Means over sequences, each counted once, as transformers' eval_loss: a short last batch weighs as many
            # sequences as it holds, and the repeats accelerate pads the processes' last batches with are dropped.
            per_sequence = self.accelerator.gather_for_metrics(
                stacked.expand(len(inputs["input_ids"]), -1).contiguous()
            )
            window["sums"] += per_sequence.sum(0)
            window["count"] += len(per_sequence)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        # One collective for what all ranks must agree on before acting, so that no process is left waiting in one: a
        # non-finite loss anywhere, and a preemption signal caught anywhere.
        local = torch.cat([torch.isfinite(loss).float().reshape(1), self.preemption.pending(loss.device)])
        counts = self.accelerator.reduce(local, reduction="sum")
        self.preemption.agree(counts[1:])
        if counts[0].item() < self.args.world_size:
            raise FloatingPointError(
                f"Non-finite loss ({loss.item()}) at step {self.state.global_step + 1}. Training stopped before the "
                "optimizer step, so the weights and the last saved checkpoint are intact. Lower the learning rate, set "
                "--max_grad_norm, or train in fp32/bf16 instead of fp16."
            )
        return loss

    def _drain_window(self, mode: str) -> dict[str, float]:
        """Means of the window's values, over the micro-batches of every process (training) or over the evaluated
        sequences, gathered from every process as they came (evaluation); resets the window."""
        window = self._windows[mode]
        sums, count = window["sums"], window["count"]
        if mode == "train":
            sums = self.accelerator.reduce(sums, reduction="sum")
            count = self.accelerator.reduce(torch.tensor(float(count), device=self.args.device), reduction="sum").item()
        self._windows[mode] = self._empty_window()
        if count == 0:
            return {}
        means = dict(zip(WINDOW_KEYS, (sums / count).tolist()))
        measured = means.pop("jepa_measured")
        if measured > 0:
            means["jepa_loss"] /= measured
        else:  # MLM-only, or no micro-batch of the window had a JEPA target
            del means["jepa_loss"]
        return means

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log, not the end-of-training summary or an evaluation
            logs.update(self._drain_window("train"))
            if self.hybrid:
                logs["ema_momentum"] = momentum_of_last_step(self.model.config, self.state)
            if self._last_pooled_embeddings is not None and self.is_world_process_zero():
                # The final LayerNorm leaves autocast in float32, but the matmuls before it rounded to half precision.
                half = torch.bfloat16 if self.args.bf16 else torch.float16 if self.args.fp16 else None
                logs["effective_rank"] = collapse_signal(self._last_pooled_embeddings, half)
        if "train_runtime" in logs:  # the end-of-training summary: this call's seconds
            logs["train_seconds"] = self._training_seconds(logs["train_runtime"])
        elif start_time is not None:
            logs["train_seconds"] = self._training_seconds(time.time() - start_time)
        super().log(logs, start_time)
        if "effective_rank" in logs and not self._collapse_reported:
            collapse = rank_collapse(self.state.log_history)
            if collapse is not None:
                logger.warning(collapse)
                self._collapse_reported = True

    def _training_seconds(self, seconds_of_this_call: float) -> float:
        """Seconds spent training this run over every `train()` call that led to this point, resumed ones included:
        the stock `train_runtime` counts the current call only, so tokens seen / runtime overstates a resumed run's
        speed. A resumed run's log history ends at its checkpoint, whose last `train_seconds` covers the calls
        before (up to the last logging step before the checkpoint; the steps after it are trained again)."""
        if self._seconds_before_this_call is None:
            self._seconds_before_this_call = next(
                (entry["train_seconds"] for entry in reversed(self.state.log_history) if "train_seconds" in entry), 0.0
            )
        return self._seconds_before_this_call + seconds_of_this_call

    def save_metrics(self, split: str, metrics: dict[str, float], combined: bool = True) -> None:
        """As `Trainer.save_metrics`, each file written whole (`atomic_path`): a process stopped while transformers
        rewrote `all_results.json` in place left it unreadable, and every later save then failed. One left so is
        replaced by this call's metrics, saying so."""
        if not self.is_world_process_zero():
            return
        write_atomically(
            os.path.join(self.args.output_dir, f"{split}_results.json"), json.dumps(metrics, indent=4, sort_keys=True)
        )
        if not combined:
            return
        path = os.path.join(self.args.output_dir, "all_results.json")
        combined_metrics = {}
        if os.path.exists(path):
            try:
                with open(path, encoding="utf-8") as file:
                    combined_metrics = json.load(file)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                logger.warning(f"{path} is damaged ({error}): rewritten with this run's {split} metrics alone.")
        write_atomically(path, json.dumps(combined_metrics | metrics, indent=4, sort_keys=True))

    def save_state(self) -> None:
        """As `Trainer.save_state`, written whole (`atomic_path`): a truncated `trainer_state.json` would stop every
        later run of the same command."""
        if self.is_world_process_zero():
            with atomic_path(os.path.join(self.args.output_dir, "trainer_state.json")) as temporary:
                self.state.save_to_json(temporary)

    def evaluate(self, *args, **kwargs) -> dict[str, float]:
        # Evaluating draws from the global random stream (the loader's worker seed): unforked, the evaluation cadence
        # would change every later dropout mask, and a run resumed with another cadence would not be the one it
        # continues.
        device = self.args.device
        devices = [] if device.type == "cpu" else [device]
        with torch.random.fork_rng(devices=devices, device_type="cuda" if device.type == "cpu" else device.type):
            return super().evaluate(*args, **kwargs)

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix: str = "eval"
    ) -> EvalLoopOutput:
        self._windows["eval"] = self._empty_window()
        output = super().evaluation_loop(dataloader, description, True, ignore_keys, metric_key_prefix)
        means = self._drain_window("eval")
        if not means:
            raise ValueError(
                f"{description} read no batch: the evaluation data is empty. Pass an eval_dataset with sequences, or "
                "none to skip evaluation."
            )
        output.metrics[f"{metric_key_prefix}_mlm_loss"] = means["mlm_loss"]
        output.metrics[f"{metric_key_prefix}_perplexity"] = _perplexity(means["mlm_loss"])
        # The loss of 15% masked tokens is not that of 40%; read once, so that a loop over a loader that this trainer
        # did not build is not labelled with the rate of an earlier one.
        masking_rate, self._evaluation_masking_rate = self._evaluation_masking_rate, None
        if masking_rate is not None:
            output.metrics[f"{metric_key_prefix}_mlm_probability"] = masking_rate
        if "jepa_loss" in means:
            output.metrics[f"{metric_key_prefix}_jepa_loss"] = means["jepa_loss"]
        return output

    def _run_epoch(self, *, epoch, epochs_trained, steps_trained_in_current_epoch, resume_from_checkpoint, **kwargs):
        # The collator's masks are a function of (seed, epoch, batch index, rank). On resume, a sampler skips the
        # trained batches without collating them, so say where the epoch restarts; an iterable dataset (streaming) is
        # read and collated through them (accelerate's `skip_first_batches`), which moves the counter as the
        # uninterrupted run did.
        resumed = epoch == epochs_trained and resume_from_checkpoint is not None and not self.args.ignore_data_skip
        skips_by_sampler = not isinstance(self.train_dataset, torch.utils.data.IterableDataset)
        if isinstance(self.data_collator, DataCollatorForPrJepa):
            start = steps_trained_in_current_epoch if resumed and skips_by_sampler else 0
            self.data_collator.set_position(epoch, start, self.args.process_index)
        return super()._run_epoch(
            epoch=epoch,
            epochs_trained=epochs_trained,
            steps_trained_in_current_epoch=steps_trained_in_current_epoch,
            resume_from_checkpoint=resume_from_checkpoint,
            **kwargs,
        )

    def get_train_dataloader(self):
        return _workers_ignoring_stop_signals(super().get_train_dataloader())

    def get_eval_dataloader(self, eval_dataset=None):
        with self._evaluation_collator():
            return _workers_ignoring_stop_signals(super().get_eval_dataloader(eval_dataset))

    def get_test_dataloader(self, test_dataset):
        with self._evaluation_collator():
            return _workers_ignoring_stop_signals(super().get_test_dataloader(test_dataset))

    def _determine_best_metric(self, metrics: dict[str, float], trial) -> bool:
        # Under --save_strategy best the Trainer saves after an evaluation only at a new best metric, which would drop
        # the checkpoint a stop signal asked for at an evaluation step: the rerun would resume from an older one.
        return super()._determine_best_metric(metrics, trial) or self.preemption.received is not None

    @contextlib.contextmanager
    def _evaluation_collator(self) -> Iterator[None]:
        """Every evaluation sees the same masks (comparable curves), drawn at --eval_mlm_probability where given, and
        leaves the training masks' counter untouched."""
        training_collator = self.data_collator
        if isinstance(training_collator, DataCollatorForPrJepa):
            self.data_collator = copy.copy(training_collator)
            self.data_collator.set_position(0, 0, self.args.process_index)
            if self.args.eval_mlm_probability is not None:
                self.data_collator.mlm_probability = self.args.eval_mlm_probability
            self._evaluation_masking_rate = self.data_collator.masking_rate
        try:
            yield
        finally:
            self.data_collator = training_collator

    def create_model_card(
        self,
        license: str | None = None,
        dataset: str | list[str] | None = None,
        dataset_args: str | None = None,
        max_seq_length: int | None = None,
        max_train_samples: int | None = None,
        keep_eval_results: bool = False,
        **kwargs,
    ) -> None:
        """Writes the PrJEPA model card (objective, λ's course, EMA schedule, data, tokens seen) as README.md.

        `Trainer.push_to_hub(license=..., dataset=[...], dataset_args=<configuration>, max_seq_length=...,
        max_train_samples=...)` forwards here; the stock card's other fields do not apply. `max_train_samples`: the
        training sequences the data was truncated to, if it was. `keep_eval_results`: the card README.md holds describes
        these same weights (nothing was trained since), so its `model-index` entries (probe scores) are kept.
        """
        if not self.is_world_process_zero():
            return
        args = self.args
        hyperparameters = {
            "learning_rate": args.learning_rate,
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "num_processes": args.world_size,
            "effective_batch_size": args.per_device_train_batch_size
            * args.gradient_accumulation_steps
            * args.world_size,
            "optimizer_steps": self.state.global_step,
            "lr_scheduler_type": getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type),
            "warmup_steps": args.get_warmup_steps(self.state.max_steps),  # a ratio below 1 as the steps it made
            "weight_decay": args.weight_decay,
            "max_grad_norm": args.max_grad_norm,
            "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
            "seed": args.seed,
        }
        if args.lr_scheduler_kwargs:  # e.g. the min_lr of cosine_with_min_lr
            hyperparameters["lr_scheduler_kwargs"] = json.dumps(args.lr_scheduler_kwargs)
        if max_seq_length is not None:
            hyperparameters["max_seq_length"] = max_seq_length
        if max_train_samples is not None:
            hyperparameters["max_train_samples"] = max_train_samples
        card = pretraining_model_card(
            self.model.config,
            self.state.log_history,
            hyperparameters,
            datasets=[dataset] if isinstance(dataset, str) else list(dataset or []),
            dataset_config=dataset_args,
            tokens_seen=self.state.num_input_tokens_seen,
            tokenizer_name=getattr(self.processing_class, "name_or_path", "bert-base-uncased"),
            model_id=self.hub_model_id if args.push_to_hub else None,
            license=license,
        )
        path = os.path.join(args.output_dir, "README.md")
        if keep_eval_results and os.path.exists(path):
            earlier = ModelCard.load(path).data
            card.data.eval_results = earlier.eval_results
            card.data.model_name = card.data.model_name or earlier.model_name  # a model-index names its model
        with atomic_path(path) as temporary:
            card.save(temporary)


@torch.no_grad()
def collapse_signal(embeddings: torch.Tensor, precision: torch.dtype | None = None) -> float:
    """RankMe of `embeddings` `(batch, hidden)`, centred, as `geometry.spectrum_metrics` defines it; 0 when every
    embedding is identical (complete collapse) to within rounding in `precision`, the dtype they were computed in
    (autocast's; default: theirs). The decomposition runs on the embeddings' device."""
    # Within rounding: whether a batch of duplicate texts reads as collapsed must not depend on which threads
    # computed it. A (batch, hidden) copy to the host, once per logging step.
    eps = torch.finfo(precision or embeddings.dtype).eps
    if has_no_variance(embeddings.detach().cpu().double().numpy(), eps):
        return 0.0
    # float64 as in the geometry package, where the device has it.
    features = embeddings.to(torch.float32 if embeddings.device.type == "mps" else torch.float64)
    singular_values = torch.linalg.svdvals(features - features.mean(dim=0))
    return float(rankme(singular_values.double().cpu().numpy()))


def _perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else float("inf")
