"""PrJepaTrainer: exact resume, EMA per optimizer step, window-averaged logs, non-finite stop, weight decay, eval."""

import json
import math
import os
import re
import signal

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from helpers import SPECIAL_TOKENS, VOCAB, StepRecorder, tiny_config
from safetensors.torch import load_file
from transformers import AutoModel, TrainerCallback

from configuration_prjepa import AUTO_MAP
from modeling_prjepa import PrJepaForPreTraining, PrJepaModel
from prjepa import trainer as trainer_module
from prjepa.collator import DataCollatorForPrJepa
from prjepa.snapshots import resolve_snapshot_steps
from prjepa.trainer import PrJepaTrainer, collapse_signal
from prjepa.training_args import PrJepaTrainingArguments

CLS, SEP = 2, 3


def token_dataset(num_examples: int = 20, seed: int = 0) -> Dataset:
    """[CLS] words… [SEP] sequences of 6 to 24 tokens."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(6, 25, (num_examples,), generator=generator).tolist()
    rows = [
        [CLS] + torch.randint(len(SPECIAL_TOKENS), len(VOCAB), (n - 2,), generator=generator).tolist() + [SEP]
        for n in lengths
    ]
    return Dataset.from_dict({"input_ids": rows})


def make_trainer(
    tokenizer,
    output_dir,
    objective="hybrid",
    callbacks=(),
    config=None,
    eval_dataset=None,
    train_dataset=None,
    **arguments,
):
    torch.manual_seed(0)
    config = config or tiny_config(objective=objective, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    model = PrJepaForPreTraining(config)
    defaults = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        max_steps=8,
        learning_rate=1e-3,
        warmup_steps=2,
        weight_decay=0.05,
        logging_steps=2,
        save_steps=3,
        seed=7,
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    defaults.update(arguments)
    return PrJepaTrainer(
        model=model,
        args=PrJepaTrainingArguments(**defaults),
        train_dataset=token_dataset() if train_dataset is None else train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        data_collator=DataCollatorForPrJepa(tokenizer, config, seed=3),
        callbacks=list(callbacks),
    )


def test_resumed_run_equals_uninterrupted_run(tokenizer, tmp_path):
    """8 steps straight vs the same run's step-3 checkpoint resumed for 5 more: every weight equal, target and λ
    included. 5 optimizer steps per epoch, so the resumed part crosses an epoch boundary; dropout is on."""
    straight = make_trainer(tokenizer, tmp_path / "straight")
    straight.train()
    recorder = StepRecorder()
    resumed = make_trainer(tokenizer, tmp_path / "resumed", callbacks=[recorder])
    resumed.train(resume_from_checkpoint=str(tmp_path / "straight" / "checkpoint-3"))
    assert recorder.steps == [4, 5, 6, 7, 8]

    expected, actual = straight.model.state_dict(), resumed.model.state_dict()
    assert any(key.startswith("target_encoder.") for key in expected) and "loss_weighting.jepa_logit" in expected
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=key)
    # And the resumed steps did move what they must reproduce: λ's logit and the target encoder (by EMA).
    at_step_3 = load_file(str(tmp_path / "straight" / "checkpoint-3" / "model.safetensors"))
    for key in ("loss_weighting.jepa_logit", "target_encoder.embeddings.word_embeddings.weight"):
        assert not torch.equal(at_step_3[key], expected[key]), key


def test_resumed_streaming_run_equals_uninterrupted_run(tokenizer, tmp_path):
    """A streamed (iterable) dataset is read and collated through the trained batches on resume, unlike a sampler's
    skip: the resumed run must still draw the uninterrupted run's masks."""

    def streaming_trainer(output_dir):
        dataset = token_dataset().to_iterable_dataset()
        return make_trainer(tokenizer, output_dir, train_dataset=dataset, gradient_accumulation_steps=1, max_steps=6)

    straight = streaming_trainer(tmp_path / "straight")
    straight.train()
    recorder = StepRecorder()
    resumed = streaming_trainer(tmp_path / "resumed")
    resumed.add_callback(recorder)
    resumed.train(resume_from_checkpoint=str(tmp_path / "straight" / "checkpoint-3"))
    assert recorder.steps == [4, 5, 6]
    expected, actual = straight.model.state_dict(), resumed.model.state_dict()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=key)


def test_signal_handlers_come_back_when_training_raises(tokenizer, tmp_path):
    class FailAtStepTwo(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise RuntimeError("data error")

    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    trainer = make_trainer(tokenizer, tmp_path, callbacks=[FailAtStepTwo()], save_steps=100)
    with pytest.raises(RuntimeError, match="data error"):
        trainer.train()
    assert {number: signal.getsignal(number) for number in before} == before


class SignalsTheProcessGroup(torch.utils.data.Dataset):
    """Training rows; the first DataLoader worker's fifth row read sends SIGTERM to that worker and to the main process,
    as a scheduler's signal to the whole process group (or a terminal's Ctrl-C) reaches every process."""

    def __init__(self, rows: Dataset):
        self.rows, self.reads = list(rows), 0

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        worker = torch.utils.data.get_worker_info()
        if worker is not None and worker.id == 0:
            self.reads += 1
            if self.reads == 5:
                os.kill(os.getppid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)
        return self.rows[index]


def test_a_signal_to_the_whole_process_group_saves_a_checkpoint_with_dataloader_workers(tokenizer, tmp_path):
    trainer = make_trainer(
        tokenizer,
        tmp_path,
        train_dataset=SignalsTheProcessGroup(token_dataset(200)),
        dataloader_num_workers=2,
        max_steps=40,
        save_steps=100,
    )
    trainer.train()
    stopped_at = trainer.state.global_step
    assert trainer.preemption.received == signal.SIGTERM and stopped_at < 40
    assert [path.name for path in tmp_path.glob("checkpoint-*")] == [f"checkpoint-{stopped_at}"]


def test_a_signal_at_an_evaluation_saves_its_checkpoint_under_save_strategy_best(tokenizer, tmp_path):
    class SignalAtStepFour(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 3:  # the fourth optimizer step is under way
                state.best_metric = float("inf")  # so this step's evaluation is not a new best
                os.kill(os.getpid(), signal.SIGTERM)

    trainer = make_trainer(
        tokenizer,
        tmp_path,
        callbacks=[SignalAtStepFour()],
        eval_dataset=token_dataset(8, seed=1),
        eval_strategy="steps",
        eval_steps=1,
        save_strategy="best",
        metric_for_best_model="eval_loss",
        greater_is_better=True,
    )
    trainer.train()
    assert trainer.state.global_step == 4 and trainer.preemption.received == signal.SIGTERM
    assert (tmp_path / "checkpoint-4").is_dir()


def test_a_second_train_call_is_not_stopped_or_silenced_by_the_first(tokenizer, tmp_path, monkeypatch, caplog):
    """A notebook's second `train()` on the same trainer, after Ctrl-C stopped the first: it trains to the end, and a
    collapse is warned about in each call."""

    class InterruptOnceAtStepTwo(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 1 and not getattr(self, "sent", False):
                self.sent = True
                os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(trainer_module, "rank_collapse", lambda history: "The effective rank collapsed.")
    trainer = make_trainer(tokenizer, tmp_path, callbacks=[InterruptOnceAtStepTwo()], save_steps=100)
    with caplog.at_level("WARNING", logger="prjepa.trainer"):
        trainer.train()
        assert trainer.state.global_step == 2 and trainer.preemption.received == signal.SIGINT
        trainer.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    assert trainer.state.global_step == 8 and trainer.preemption.received is None
    assert [record.getMessage() for record in caplog.records].count("The effective rank collapsed.") == 2


class RecordOnlineWeights(TrainerCallback):
    """Online encoder weights after each optimizer step, taken before the EMA callback runs."""

    def __init__(self):
        self.snapshots = []

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.snapshots.append({k: v.detach().clone() for k, v in model.prjepa.state_dict().items()})


def test_a_batch_size_that_could_change_mid_run_is_refused(tokenizer, tmp_path):
    """transformers' --auto_find_batch_size halves the batch after an out-of-memory error and trains again: the run
    would not be the one its settings record, and would not resume exactly."""
    with pytest.raises(ValueError, match="--auto_find_batch_size starts training again at half the batch size"):
        make_trainer(tokenizer, tmp_path, auto_find_batch_size=True)


def test_target_encoder_follows_ema_once_per_optimizer_step(tokenizer, tmp_path):
    recorder = RecordOnlineWeights()
    trainer = make_trainer(tokenizer, tmp_path, callbacks=[recorder], max_steps=5, save_steps=100)
    expected = {k: v.clone() for k, v in trainer.model.prjepa.state_dict().items()}  # the target starts as a copy
    trainer.train()

    assert len(recorder.snapshots) == 5  # gradient accumulation 2: five updates from ten micro-batches
    config = trainer.model.config
    for step, online in enumerate(recorder.snapshots):
        momentum = config.ema_momentum_start + (config.ema_momentum_end - config.ema_momentum_start) * step / 5
        expected = {k: momentum * expected[k] + (1 - momentum) * online[k] for k in expected}
    target = trainer.model.target_encoder.state_dict()
    for key, value in expected.items():
        torch.testing.assert_close(target[key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_logs_average_each_window_and_reach_trainer_state(tokenizer, tmp_path):
    # Rows of three tokens are too short for a JEPA target: a micro-batch of two of them reports an unmeasured
    # L_JEPA of 0, which the window's L_JEPA leaves out.
    rows = list(token_dataset(12)["input_ids"]) + [[CLS, len(SPECIAL_TOKENS), SEP]] * 12
    trainer = make_trainer(
        tokenizer, tmp_path, max_steps=4, save_steps=4, train_dataset=Dataset.from_dict({"input_ids": rows})
    )
    seen, pooled = [], []

    def record(module, inputs, output):
        seen.append(
            [output.jepa_loss.item(), output.mlm_loss.item(), output.jepa_weight.item(), output.has_jepa_targets.item()]
        )
        pooled.append(output.pooled_embeddings)

    trainer.model.register_forward_hook(record)
    trainer.train()

    # A window mixing measured and unmeasured micro-batches, where averaging in the zeros would show.
    assert any(0 < sum(measured for *_, measured in seen[4 * window : 4 * window + 4]) < 4 for window in range(2))
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry["step"] for entry in logs] == [2, 4]
    for window, entry in enumerate(logs):  # logging_steps 2 × accumulation 2 = four micro-batches per window
        values = torch.tensor(seen[4 * window : 4 * window + 4])
        measured = values[:, 3].bool()
        if measured.any():
            assert entry["jepa_loss"] == pytest.approx(values[measured, 0].mean().item(), rel=1e-5)
        else:
            assert "jepa_loss" not in entry
        assert entry["mlm_loss"] == pytest.approx(values[:, 1].mean().item(), rel=1e-5)
        assert entry["jepa_weight"] == pytest.approx(values[:, 2].mean().item(), rel=1e-5)
        assert entry["ema_momentum"] == pytest.approx(trainer.model.config.ema_momentum(entry["step"] - 1, 4))
        # RankMe of the window's last 2-sequence batch: 0 if its two sequences are the same, else between 1 and 2.
        assert entry["effective_rank"] == pytest.approx(collapse_signal(pooled[4 * window + 3]))
        assert entry["effective_rank"] == 0 or 1.0 <= entry["effective_rank"] <= 2
    state = json.loads((tmp_path / "checkpoint-4" / "trainer_state.json").read_text())
    assert [entry.get("jepa_weight") for entry in state["log_history"] if "loss" in entry] == [
        entry["jepa_weight"] for entry in logs
    ]


def test_non_finite_loss_stops_before_the_weights_change(tokenizer, tmp_path):
    trainer = make_trainer(tokenizer, tmp_path, max_steps=6, save_steps=2, gradient_accumulation_steps=1)
    calls = []

    def poison_fourth_batch(module, inputs, output):
        calls.append(1)
        if len(calls) == 4:
            output.loss = output.loss * float("nan")
            output.mlm_loss = output.mlm_loss * float("nan")
        return output

    poison = trainer.model.register_forward_hook(poison_fourth_batch)
    with pytest.raises(FloatingPointError, match="Non-finite loss .* step 4"):
        trainer.train()
    assert all(torch.isfinite(value).all() for value in trainer.model.state_dict().values())
    checkpoint = tmp_path / "checkpoint-2"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint-2"]
    assert all(torch.isfinite(value).all() for value in load_file(str(checkpoint / "model.safetensors")).values())

    # Resumed by the same trainer, as in a notebook: the failed call's non-finite batch is not in the new logs.
    poison.remove()
    trainer.train(resume_from_checkpoint=str(checkpoint))
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry["step"] for entry in logged] == [2, 4, 6]
    assert all(math.isfinite(entry[key]) for entry in logged for key in ("loss", "mlm_loss", "jepa_loss"))


def test_loss_weighting_is_not_decayed(tokenizer, tmp_path):
    trainer = make_trainer(tokenizer, tmp_path, config=tiny_config(loss_weighting="uncertainty"))
    optimizer = trainer.create_optimizer()
    decay_of = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    weighting = list(trainer.model.loss_weighting.parameters())
    assert weighting and all(decay_of[id(p)] == 0.0 for p in weighting)
    assert decay_of[id(trainer.model.prjepa.embeddings.word_embeddings.weight)] == 0.05
    assert all(id(p) not in decay_of for p in trainer.model.target_encoder.parameters())


def test_the_rank_logged_at_an_epoch_s_one_sequence_batch_is_the_last_full_batch_s(tokenizer, tmp_path):
    """9 sequences in batches of 2: each epoch ends with one sequence, which has no rank (it would read as a complete
    collapse, 0). The log at that step measures the batch before it."""
    trainer = make_trainer(
        tokenizer,
        tmp_path,
        objective="mlm",
        train_dataset=token_dataset(9),
        gradient_accumulation_steps=1,
        max_steps=5,
        logging_steps=5,
        save_steps=100,
    )
    trainer.train()
    (log,) = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert log["step"] == 5 and log["effective_rank"] > 1.0


def test_mlm_objective_trains_without_target_encoder(tokenizer, tmp_path):
    trainer = make_trainer(tokenizer, tmp_path, objective="mlm", max_steps=2, save_steps=2)
    trainer.train()
    assert trainer.model.target_encoder is None
    log = next(entry for entry in trainer.state.log_history if "loss" in entry)
    assert log["mlm_loss"] == pytest.approx(log["loss"], rel=1e-5)
    assert "jepa_loss" not in log and "ema_momentum" not in log and log["effective_rank"] >= 1.0


def test_checkpoint_carries_code_and_loads_with_remote_code(tokenizer, tmp_path):
    trainer = make_trainer(tokenizer, tmp_path, max_steps=2, save_steps=2)
    trainer.train()
    checkpoint = tmp_path / "checkpoint-2"
    assert {"modeling_prjepa.py", "configuration_prjepa.py", "model.safetensors"} <= set(os.listdir(checkpoint))
    # What a process without this project loads: the checkpoint's own code, through the auto_map it writes. (Here
    # transformers prefers the classes this process registered; tests/test_remote_code.py loads in a clean process.)
    assert json.loads((checkpoint / "config.json").read_text())["auto_map"] == AUTO_MAP
    target = AutoModel.from_pretrained(str(checkpoint), trust_remote_code=True, encoder="target")
    expected = trainer.model.target_encoder.state_dict()
    for key, value in target.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0)


def test_evaluation_reports_both_losses_and_is_repeatable(tokenizer, tmp_path):
    # Batches of 4 and 1: each loss is a mean over sequences, as eval_loss is, not over batches.
    eval_dataset = token_dataset(5, seed=1)
    trainer = make_trainer(
        tokenizer, tmp_path, eval_dataset=eval_dataset, max_steps=2, save_steps=2, per_device_eval_batch_size=4
    )
    first, second = trainer.evaluate(), trainer.evaluate()
    for key in ("eval_loss", "eval_mlm_loss", "eval_jepa_loss"):
        assert first[key] == second[key]  # the same masks every evaluation
    assert first["eval_perplexity"] == pytest.approx(torch.tensor(first["eval_mlm_loss"]).exp().item(), rel=1e-5)
    assert first["eval_mlm_loss"] > 0 and 0 <= first["eval_jepa_loss"] <= 2
    # Dropout off in evaluation: the λ-weighted mean of the two means equals the Trainer's eval_loss.
    lam = torch.sigmoid(trainer.model.loss_weighting.jepa_logit).item()
    expected = lam * first["eval_jepa_loss"] + (1 - lam) * first["eval_mlm_loss"]
    assert first["eval_loss"] == pytest.approx(expected, rel=1e-5)
    mlm_only = make_trainer(
        tokenizer, tmp_path / "mlm", "mlm", eval_dataset=eval_dataset, max_steps=2, per_device_eval_batch_size=4
    )
    evaluation = mlm_only.evaluate()
    assert evaluation["eval_mlm_loss"] == pytest.approx(evaluation["eval_loss"], rel=1e-6)


def test_an_evaluation_of_no_data_is_refused_naming_it(tokenizer, tmp_path):
    with pytest.raises(ValueError, match="Evaluation read no batch: the evaluation data is empty"):
        make_trainer(tokenizer, tmp_path, eval_dataset=token_dataset(0)).evaluate()


def test_an_evaluation_at_another_masking_rate_measures_what_a_model_trained_at_that_rate_is_measured_by(
    tokenizer, tmp_path
):
    """--eval_mlm_probability draws the evaluation's masks at its rate: the loss equals that of the same weights whose
    config trains at that rate, the metrics name the rate, and the training masks keep the config's."""
    eval_dataset = token_dataset(6, seed=1)
    config = dict(objective="mlm", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    trained_at_15 = make_trainer(
        tokenizer,
        tmp_path / "15",
        config=tiny_config(**config, mlm_probability=0.15),
        eval_dataset=eval_dataset,
        eval_mlm_probability=0.4,
    )
    trained_at_40 = make_trainer(
        tokenizer, tmp_path / "40", config=tiny_config(**config, mlm_probability=0.4), eval_dataset=eval_dataset
    )
    at_40, reference = trained_at_15.evaluate(), trained_at_40.evaluate()
    assert at_40["eval_mlm_loss"] == reference["eval_mlm_loss"]
    assert at_40["eval_mlm_probability"] == reference["eval_mlm_probability"] == 0.4
    assert trained_at_15.data_collator.masking_rate == 0.15
    # predict builds its own loader, with the evaluation's masks, and leaves the training masks where they were.
    predicted = trained_at_15.predict(eval_dataset).metrics
    assert predicted["test_mlm_loss"] == at_40["eval_mlm_loss"] and predicted["test_mlm_probability"] == 0.4
    assert trained_at_15.data_collator._calls == 0
    trained_at_15.args.eval_mlm_probability = None
    at_15 = trained_at_15.evaluate()
    assert at_15["eval_mlm_probability"] == 0.15 and at_15["eval_mlm_loss"] != at_40["eval_mlm_loss"]
    with pytest.raises(ValueError, match=r"--eval_mlm_probability must be in \(0, 1\) \(e\.g\. 0\.15\), got 15"):
        PrJepaTrainingArguments(output_dir=str(tmp_path / "bad"), eval_mlm_probability=15)


def test_collapse_signal_equals_the_geometry_packages_effective_rank():
    from prjepa.geometry import spectrum_metrics
    from prjepa.trainer import collapse_signal

    generator = torch.Generator().manual_seed(0)
    # Anisotropic: a few strong directions, so RankMe is far from both 1 and the dimension.
    embeddings = torch.randn(24, 16, generator=generator) * torch.logspace(0, -3, 16)
    expected = spectrum_metrics(embeddings.double().numpy()).effective_rank
    assert collapse_signal(embeddings) == pytest.approx(expected, rel=1e-5)
    assert 1.5 < expected < 12
    assert collapse_signal(embeddings[:1].repeat(5, 1)) == 0.0  # every embedding identical
    # Identical to within float32 rounding, as a batch of duplicate texts may come out: still no variance.
    rounded = embeddings[:1] * (1 + torch.finfo(torch.float32).eps * torch.randn(5, 16, generator=generator))
    assert rounded.dtype == torch.float32 and not torch.equal(rounded[0], rounded[1])
    assert collapse_signal(rounded) == 0.0
    # A healthy batch in half precision keeps its rank, strongly anisotropic (mean cosine 0.99) too: the tolerance is
    # the dtype's rounding of each feature, not of the norm that the shared mean dominates.
    spread = torch.randn(64, 512, generator=generator)
    shared = F.layer_norm(torch.randn(1, 512, generator=generator), (512,)) + 0.1 * spread
    for batch in (spread, shared):
        for dtype in (torch.bfloat16, torch.float16):
            assert collapse_signal(batch.to(dtype)) == pytest.approx(collapse_signal(batch), rel=0.01)
    # Computed under bf16 autocast, float32 LayerNorm outputs of one vector differ by bf16 rounding.
    layer_normed = F.layer_norm(torch.randn(1, 512, generator=generator), (512,)).repeat(8, 1)
    layer_normed[4:, 7] += layer_normed[4:, 7].abs() * torch.finfo(torch.bfloat16).eps
    assert collapse_signal(layer_normed, torch.bfloat16) == 0.0 < collapse_signal(layer_normed)


def test_a_collapsing_rank_is_warned_about_once(tokenizer, tmp_path, caplog):
    """Nine logged ranks below half the first one, then a batch of identical embeddings (rank 0): the tenth low log
    completes the collapse, which is warned about once, not at every later log."""
    trainer = make_trainer(tokenizer, tmp_path, objective="mlm")
    trainer.state.log_history = [
        {"step": 10 * (i + 1), "loss": 3.0, "effective_rank": 20.0 if i == 0 else 5.0} for i in range(10)
    ]
    trainer._last_pooled_embeddings = torch.ones(4, 8)
    with caplog.at_level("WARNING", logger="prjepa.trainer"):
        trainer.log({"loss": 3.0})
        trainer.log({"loss": 3.0})
    warnings = [record.getMessage() for record in caplog.records if "collapsed" in record.getMessage()]
    assert trainer.state.log_history[-1]["effective_rank"] == 0.0
    assert len(warnings) == 1 and "below 0.5 × its first logged value (20 at step 10)" in warnings[0]


def test_snapshots_keep_the_initialisation_and_the_requested_steps_exactly(tokenizer, tmp_path):
    straight = make_trainer(tokenizer, tmp_path / "straight", snapshot_steps=[0, 3, 6])
    initial = {key: value.clone() for key, value in straight.model.state_dict().items()}
    straight.train()
    snapshots = {step: tmp_path / "straight" / f"snapshot-{step}" for step in (0, 3, 6)}
    assert sorted(path.name for path in (tmp_path / "straight").glob("snapshot-*")) == sorted(
        path.name for path in snapshots.values()
    )
    for key, value in load_file(str(snapshots[0] / "model.safetensors")).items():
        torch.testing.assert_close(value, initial[key], rtol=0, atol=0, msg=key)
    checkpoint = load_file(str(tmp_path / "straight" / "checkpoint-3" / "model.safetensors"))
    assert load_file(str(snapshots[3] / "model.safetensors")).keys() == checkpoint.keys()
    for key, value in load_file(str(snapshots[3] / "model.safetensors")).items():
        torch.testing.assert_close(value, checkpoint[key], rtol=0, atol=0, msg=key)
    state = json.loads((snapshots[6] / "snapshot_state.json").read_text())
    logged_at_step_6 = next(entry for entry in straight.state.log_history if entry["step"] == 6)
    assert state == {"step": 6, "num_input_tokens_seen": logged_at_step_6["num_input_tokens_seen"]}
    assert {"modeling_prjepa.py", "configuration_prjepa.py"} <= set(os.listdir(snapshots[6]))
    assert json.loads((snapshots[6] / "config.json").read_text())["auto_map"] == AUTO_MAP
    assert isinstance(AutoModel.from_pretrained(snapshots[6], trust_remote_code=True), PrJepaModel)

    # A run resumed past step 0 adds the later snapshots only, equal to the uninterrupted run's.
    resumed = make_trainer(tokenizer, tmp_path / "resumed", snapshot_steps=[0, 3, 6])
    resumed.train(resume_from_checkpoint=str(tmp_path / "straight" / "checkpoint-3"))
    assert [path.name for path in (tmp_path / "resumed").glob("snapshot-*")] == ["snapshot-6"]
    expected = load_file(str(snapshots[6] / "model.safetensors"))
    for key, value in load_file(str(tmp_path / "resumed" / "snapshot-6" / "model.safetensors")).items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=0, msg=key)


def test_snapshot_ratios_place_snapshots_in_a_run_by_epochs(tokenizer, tmp_path):
    """Below 1, a snapshot step is a ratio of the steps the run takes (as `eval_steps`), which a run by epochs learns
    only once its dataloader exists; rounded as the experiment's presets round their fractions."""
    # 20 sequences, 2 per batch, 2 batches per optimizer step: 5 steps per epoch, so 0.4 is step 2.
    trainer = make_trainer(tokenizer, tmp_path, max_steps=-1, num_train_epochs=1, snapshot_steps=[0, 0.4, 3])
    trainer.train()
    assert sorted(path.name for path in tmp_path.glob("snapshot-*")) == ["snapshot-0", "snapshot-2", "snapshot-3"]
    assert json.loads((tmp_path / "snapshot-2" / "snapshot_state.json").read_text())["step"] == 2


def test_a_snapshot_ratio_is_rounded_to_a_step_and_one_above_0_is_never_the_initialisation():
    assert resolve_snapshot_steps([0, 0.01, 0.5, 0.74, 700], 40) == [0, 1, 20, 30, 700]
    assert resolve_snapshot_steps([0.25, 0.75], 150) == [38, 112]  # the demo preset's, as its finished runs recorded


@pytest.mark.parametrize(
    "steps, message",
    [
        ([-1], "≥ 0"),
        ([1.5], "ratios of the run's steps below 1"),
        ([math.inf], "≥ 0"),
        ([math.nan], "≥ 0"),
        ([9], r"\[9\] lie after the run's last optimizer step \(8 steps\)"),
    ],
)
def test_snapshot_steps_outside_the_run_are_refused(tmp_path, steps, message):
    with pytest.raises(ValueError, match=message):
        PrJepaTrainingArguments(output_dir=str(tmp_path), max_steps=8, snapshot_steps=steps, use_cpu=True)


def test_snapshot_steps_past_an_epoch_based_run_stop_it_before_training(tokenizer, tmp_path):
    # 20 sequences, 2 per batch, 2 batches per optimizer step: 5 steps per epoch.
    trainer = make_trainer(tokenizer, tmp_path, max_steps=-1, num_train_epochs=1, snapshot_steps=[0, 5, 6])
    with pytest.raises(ValueError, match=r"--snapshot_steps \[6\] lie after the run's last optimizer step \(5 steps\)"):
        trainer.train()
    assert trainer.state.global_step == 0 and not list(tmp_path.glob("snapshot-*"))


def test_training_seconds_add_up_over_a_resumed_run(tokenizer, tmp_path):
    """`train_runtime` restarts with every call; `train_seconds` carries on from the checkpoint's last training log."""
    straight = make_trainer(tokenizer, tmp_path / "straight")
    summary = straight.train().metrics
    assert summary["train_seconds"] == summary["train_runtime"]
    seconds = [entry["train_seconds"] for entry in straight.state.log_history if "train_seconds" in entry]
    assert seconds == sorted(seconds) and len(seconds) == 5  # four training logs (every 2 of 8 steps), the summary

    resumed = make_trainer(tokenizer, tmp_path / "resumed")
    checkpoint = tmp_path / "straight" / "checkpoint-6"
    before = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"][-1]
    assert before["step"] == 6
    summary = resumed.train(resume_from_checkpoint=str(checkpoint)).metrics
    assert summary["train_seconds"] == pytest.approx(before["train_seconds"] + summary["train_runtime"], abs=1e-9)
    assert summary["train_seconds"] > summary["train_runtime"]


def test_the_readmes_python_pretraining_example_trains(tokenizer, tmp_path, monkeypatch):
    """The README's example of the public API, run as written but for its tokenizer and length: names it uses that
    the package no longer exports, or arguments its classes no longer take, fail here."""
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")) as file:
        readme = file.read()
    example = re.search(r"```python\n(.*?)```", readme[readme.index("## Pretraining") :], re.S).group(1)
    for written, here in [
        ('"bert-base-uncased"', repr(str(tmp_path / "tokenizer"))),
        ("max_steps=100", "max_steps=2, per_device_train_batch_size=4, report_to='none', use_cpu=True"),
    ]:
        assert written in example
        example = example.replace(written, here)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "a.txt").write_text("the cat sat on the mat\n\n" * 20)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(example, namespace)
    assert namespace["trainer"].state.global_step == 2
    assert (tmp_path / "out" / "checkpoint-2").is_dir()
