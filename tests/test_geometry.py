"""Geometry metrics against cases with known answers, brute-force pairwise loops and exact resampling."""

import itertools
import json
import logging
import math
import warnings

import numpy as np
import pytest
from matplotlib.container import BarContainer
from sklearn.exceptions import ConvergenceWarning

from prjepa import geometry
from prjepa.geometry import (
    NotApplicable,
    alignment_replicates,
    anisotropy,
    bootstrap_weights,
    centred_uniformity_replicates,
    class_distances,
    compare_models,
    effective_rank_replicates,
    geometry_metrics,
    most_frequent_tokens,
    principal_components,
    probe_accuracy,
    rankme,
    render_markdown,
    spectrum_metrics,
    squared_distance_blocks,
    uniformity_replicates,
    unit_rows,
)
from prjepa.geometry import metrics as metrics_module
from prjepa.utils import standardised_linear_model


def uniformity(features: np.ndarray) -> float:
    return float(uniformity_replicates(unit_rows(features), np.ones((1, len(features))))[0])


def alignment(features: np.ndarray, labels: np.ndarray) -> float:
    return float(alignment_replicates(unit_rows(features), labels, np.ones((1, len(features))))[0])


def features_with_spectrum(eigenvalues: list[float], num_samples: int, dim: int, seed: int = 0) -> np.ndarray:
    """Features `(num_samples, dim)` whose centred covariance has exactly `eigenvalues` (the rest 0), plus an offset."""
    generator = np.random.default_rng(seed)
    # Orthonormal sample directions orthogonal to the all-ones vector, so that centring leaves them unchanged.
    basis = np.linalg.qr(np.column_stack([np.ones(num_samples), generator.standard_normal((num_samples, dim))]))[0]
    axes = np.linalg.qr(generator.standard_normal((dim, dim)))[0]
    singular_values = np.sqrt(np.asarray(eigenvalues) * (num_samples - 1))
    rank = len(eigenvalues)
    return basis[:, 1 : rank + 1] * singular_values @ axes[:, :rank].T + generator.standard_normal(dim)


def sphere(num_samples: int, dim: int, seed: int = 0) -> np.ndarray:
    points = np.random.default_rng(seed).standard_normal((num_samples, dim))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


# ----------------------------------------------------------------------------------------------------------------------
# Known answers


def test_isotropic_gaussian_has_effective_rank_near_dim_and_no_anisotropy():
    features = np.random.default_rng(0).standard_normal((2000, 32))
    spectrum = spectrum_metrics(features)
    assert 0.97 * 32 < spectrum.effective_rank <= 32
    assert spectrum.spectral_entropy > 0.99
    assert abs(anisotropy(unit_rows(features))) < 0.01


def test_features_on_a_line_have_effective_rank_one_up_to_the_smoothing():
    generator = np.random.default_rng(0)
    features = generator.standard_normal((200, 1)) * generator.standard_normal((1, 16)) + 5.0
    epsilon = geometry.RANKME_EPSILON
    # RankMe of singular values (σ, 0, …, 0), 16 of them.
    expected = math.exp(-(1 + epsilon) * math.log(1 + epsilon) - 15 * epsilon * math.log(epsilon))
    spectrum = spectrum_metrics(features)
    assert spectrum.effective_rank == pytest.approx(expected, abs=1e-5)
    assert spectrum.components_for_90_variance == 1
    assert spectrum.stable_rank == pytest.approx(1.0, abs=1e-9)


def test_hand_built_spectrum():
    features = features_with_spectrum([50.0, 30.0, 15.0, 5.0], num_samples=100, dim=6)
    spectrum = spectrum_metrics(features)
    np.testing.assert_allclose(spectrum.eigenvalues, [50, 30, 15, 5, 0, 0], atol=1e-9)
    assert spectrum.components_for_90_variance == 3  # 50 + 30 < 90 ≤ 50 + 30 + 15
    assert spectrum.stable_rank == pytest.approx(2.0)  # 100 / 50
    entropy = -sum(q * math.log(q) for q in (0.5, 0.3, 0.15, 0.05))
    assert spectrum.spectral_entropy == pytest.approx(entropy / math.log(6))


def test_flat_spectrum_is_fully_spread():
    spectrum = spectrum_metrics(features_with_spectrum([2.0] * 5, num_samples=60, dim=5))
    assert spectrum.spectral_entropy == pytest.approx(1.0)
    assert spectrum.stable_rank == pytest.approx(5.0)
    assert spectrum.components_for_90_variance == 5
    assert spectrum.effective_rank == pytest.approx(5.0, abs=1e-5)


def test_principal_components_match_svd_in_both_orientations():
    for shape in ((40, 6), (6, 40)):
        features = np.random.default_rng(1).standard_normal(shape)
        centred = features - features.mean(axis=0)
        left, singular_values, _ = np.linalg.svd(centred, full_matrices=False)
        values, scores = principal_components(features)
        np.testing.assert_allclose(values, singular_values, atol=1e-9)
        # Scores are U·S up to the sign of each component.
        np.testing.assert_allclose(np.abs(scores), np.abs(left * singular_values), atol=1e-9)


def test_identical_same_label_points_have_zero_alignment_and_intra_distance():
    generator = np.random.default_rng(0)
    directions = generator.standard_normal((2, 8))
    labels = np.array([0, 0, 0, 1, 1])
    # Scaling does not move a point on the unit sphere.
    features = directions[labels] * np.array([[1.0], [3.0], [0.5], [2.0], [1.0]])
    assert alignment(features, labels) == pytest.approx(0.0, abs=1e-12)
    intra, inter = class_distances(unit_rows(features), labels)
    assert intra == pytest.approx(0.0, abs=1e-12)
    assert inter > 0.1


def test_collapsed_features_have_uniformity_exactly_zero():
    features = np.tile(np.random.default_rng(0).standard_normal(16), (300, 1))
    assert uniformity(features) == 0.0
    assert anisotropy(unit_rows(features)) == pytest.approx(1.0)
    metrics = geometry_metrics(features, num_resamples=20)["metrics"]
    assert metrics["uniformity"] == {"value": 0.0, "ci95": [0.0, 0.0]}
    assert "zero variance" in metrics["effective_rank"]["not_applicable"]


def test_centred_uniformity_sees_the_spread_that_a_shared_offset_hides():
    spread = sphere(400, 32, seed=1)
    anisotropic = spread + 20 * sphere(1, 32, seed=2)  # one direction shared by every feature dominates
    raw = geometry_metrics(anisotropic, num_resamples=20)["metrics"]
    assert raw["uniformity"]["value"] > -0.05 and raw["anisotropy"]["value"] > 0.99
    # Brute force on the centred, normalised features: the log mean kernel over distinct pairs.
    centred = unit_rows(spread - spread.mean(axis=0))
    kernel = [math.exp(-2 * np.sum((centred[i] - centred[j]) ** 2)) for i, j in itertools.combinations(range(400), 2)]
    expected = math.log(sum(kernel) / len(kernel))
    assert raw["centred_uniformity"]["value"] == pytest.approx(expected, rel=1e-9)
    assert expected < -3  # the spread the raw value hid
    low, high = raw["centred_uniformity"]["ci95"]
    assert low <= expected <= high


def test_centred_uniformity_resamples_centre_each_resample_on_its_own_mean():
    """Against resamples centred exactly: with a skewed, heavy-tailed dimension the mean's own sampling error is a
    large part of the spread, which centring once on the sample's mean would leave out."""
    rng = np.random.default_rng(0)
    features = rng.lognormal(size=(200, 6))
    features[:, 0] *= 5
    weights = bootstrap_weights(200, 200, seed=1)
    replicates = centred_uniformity_replicates(features, weights)
    exact = np.array(
        [uniformity_replicates(unit_rows(features - row @ features / row.sum()), row[None])[0] for row in weights]
    )
    centred_once = uniformity_replicates(unit_rows(features - features.mean(axis=0)), weights)
    assert np.std(replicates) == pytest.approx(np.std(exact), rel=0.05)
    assert np.corrcoef(replicates, exact)[0, 1] > 0.98 and np.std(centred_once) < 0.7 * np.std(exact)
    # The sample itself is centred on its mean: no correction.
    ones = np.ones((1, 200))
    centred = uniformity_replicates(unit_rows(features - features.mean(axis=0)), ones)[0]
    assert centred_uniformity_replicates(features, ones)[0] == pytest.approx(centred, rel=1e-12)


def test_centred_uniformity_of_collapsed_features_is_not_applicable_and_so_is_its_ratio():
    collapsed = np.tile(np.random.default_rng(0).standard_normal(16), (50, 1))
    comparison = compare_models({"a": collapsed, "b": sphere(50, 16)}, ratio=("a", "b"), num_resamples=10)
    assert "equals the mean feature" in comparison["models"]["a"]["metrics"]["centred_uniformity"]["not_applicable"]
    assert comparison["centred_uniformity_ratio"]["value"] is None
    assert comparison["uniformity_ratio"]["value"] == 0.0


def test_uniform_sphere_has_uniformity_near_minus_four():
    dim = 512
    # E exp(−2‖x − y‖²) = e^−4 E exp(4⟨x, y⟩) ≈ e^(−4 + 8/dim) for ⟨x, y⟩ ~ N(0, 1/dim).
    value = uniformity(sphere(1000, dim))
    assert abs(value + 4) < 0.05
    assert value == pytest.approx(-4 + 8 / dim, abs=0.01)


def test_hand_built_class_distances():
    e1, e2 = np.eye(2)
    features = np.array([3 * e1, e2, -e1, -2 * e2])
    labels = np.array([0, 0, 1, 1])
    intra, inter = class_distances(unit_rows(features), labels)
    assert intra == pytest.approx(math.sqrt(2))  # e1–e2 and −e1–(−e2)
    assert inter == pytest.approx((2 + 2 + math.sqrt(2) + math.sqrt(2)) / 4)
    metrics = geometry_metrics(features, labels, num_resamples=10)["metrics"]
    assert metrics["intra_inter_ratio"]["value"] == pytest.approx(math.sqrt(2) / (1 + math.sqrt(2) / 2))
    # Codes with a gap name the same classes; one class present is one class, however it is numbered.
    assert class_distances(unit_rows(features), labels * 2) == (intra, inter)
    with pytest.raises(NotApplicable, match="a single class"):
        class_distances(unit_rows(features), np.ones(4, dtype=int))


# ----------------------------------------------------------------------------------------------------------------------
# Against brute force


def brute_force_pair_metrics(unit: np.ndarray, labels: np.ndarray, sample_of: np.ndarray) -> dict[str, float]:
    """Loops over ordered pairs of positions whose samples differ (`sample_of[a] != sample_of[b]`)."""
    kernel, same_squared, same, different, cosines = [], [], [], [], []
    for a, b in itertools.permutations(range(len(unit)), 2):
        if sample_of[a] == sample_of[b]:
            continue
        squared = float(np.sum((unit[a] - unit[b]) ** 2))
        kernel.append(math.exp(-2 * squared))
        cosines.append(float(unit[a] @ unit[b]))
        if labels[a] == labels[b]:
            same_squared.append(squared)
            same.append(math.sqrt(squared))
        else:
            different.append(math.sqrt(squared))
    return dict(
        uniformity=math.log(np.mean(kernel)),
        alignment=np.mean(same_squared),
        intra=np.mean(same),
        inter=np.mean(different),
        anisotropy=np.mean(cosines),
    )


def test_pair_metrics_match_brute_force_across_blocks(monkeypatch):
    monkeypatch.setattr(metrics_module, "PAIR_BLOCK_ROWS", 7)  # several blocks and a ragged last one
    generator = np.random.default_rng(0)
    features = generator.standard_normal((30, 5)) + 0.5
    labels = generator.integers(0, 3, 30)
    unit = unit_rows(features)
    assert [rows.stop - rows.start for rows, _ in squared_distance_blocks(unit)] == [7, 7, 7, 7, 2]
    expected = brute_force_pair_metrics(unit, labels, np.arange(30))
    assert uniformity(features) == pytest.approx(expected["uniformity"], rel=1e-10)
    assert alignment(features, labels) == pytest.approx(expected["alignment"], rel=1e-10)
    assert class_distances(unit, labels) == pytest.approx((expected["intra"], expected["inter"]), rel=1e-10)
    assert anisotropy(unit) == pytest.approx(expected["anisotropy"], rel=1e-10)


def test_resample_weights_match_an_explicit_resample(monkeypatch):
    monkeypatch.setattr(metrics_module, "PAIR_BLOCK_ROWS", 7)
    generator = np.random.default_rng(1)
    features = generator.standard_normal((25, 4))
    labels = generator.integers(0, 2, 25)
    unit = unit_rows(features)
    weights = bootstrap_weights(25, num_resamples=3, seed=5)
    for row, resample_uniformity, resample_alignment in zip(
        weights, uniformity_replicates(unit, weights), alignment_replicates(unit, labels, weights)
    ):
        drawn = np.repeat(np.arange(25), row.astype(int))
        # Copies of one sample are not a pair: the resample has the sample's pairs, with multiplicity.
        expected = brute_force_pair_metrics(unit[drawn], labels[drawn], sample_of=drawn)
        assert resample_uniformity == pytest.approx(expected["uniformity"], rel=1e-10)
        assert resample_alignment == pytest.approx(expected["alignment"], rel=1e-10)


def test_linearised_effective_rank_replicates():
    generator = np.random.default_rng(0)
    features = generator.standard_normal((2000, 8)) * np.linspace(0.2, 3.0, 8)
    point = spectrum_metrics(features).effective_rank
    assert effective_rank_replicates(features, np.ones((1, 2000)))[0] == pytest.approx(point, rel=1e-12)
    weights = bootstrap_weights(2000, num_resamples=10, seed=3)
    replicates = effective_rank_replicates(features, weights)
    axes = np.linalg.svd(features - features.mean(axis=0), full_matrices=False)[2]
    for row, replicate in zip(weights, replicates):
        resample = features[np.repeat(np.arange(2000), row.astype(int))]
        centred = resample - resample.mean(axis=0)
        # By definition: the resample's spread along the full sample's principal axes.
        assert replicate == pytest.approx(float(rankme(np.linalg.norm(centred @ axes.T, axis=0))), rel=1e-9)
        # Well-separated eigenvalues: close to the exact resampled RankMe (spread across resamples ≈ 0.012).
        exact = float(rankme(np.linalg.svd(centred, compute_uv=False)))
        assert replicate == pytest.approx(exact, abs=0.01)


# ----------------------------------------------------------------------------------------------------------------------
# Probes


def test_probe_reads_a_linearly_encoded_label_and_not_noise():
    generator = np.random.default_rng(0)
    labels = generator.integers(0, 2, 400)
    features = generator.standard_normal((400, 6))
    features[:, 0] += 6 * labels
    result = probe_accuracy(features, labels)
    assert result.accuracy == 1.0
    assert (result.num_samples, result.num_classes, result.fraction_used) == (400, 2, 1.0)
    assert abs(result.chance_accuracy - np.bincount(labels).max() / 400) < 0.05
    noise = probe_accuracy(features, generator.integers(0, 2, 400))
    assert abs(noise.accuracy - 0.5) < 0.12


def test_probe_drops_classes_too_rare_to_test():
    generator = np.random.default_rng(0)
    # With a quarter held out a class needs 4 samples: classes 2 (3 samples) and 3 (1 sample) are dropped.
    targets = np.array([0] * 40 + [1] * 40 + [2] * 3 + [3])
    result = probe_accuracy(generator.standard_normal((84, 4)), targets)
    assert (result.num_classes, result.num_samples) == (2, 80)
    assert result.fraction_used == pytest.approx(80 / 84)
    with pytest.raises(NotApplicable, match="fewer than two classes"):
        probe_accuracy(generator.standard_normal((43, 4)), [0] * 40 + [1] * 3)


def test_the_probes_convergence_warnings_become_one_line_with_the_count(monkeypatch, caplog):
    def one_iteration(**head_options):  # stops short of convergence, as a hard token probe can
        return standardised_linear_model(**head_options).set_params(head__max_iter=1)

    monkeypatch.setattr(metrics_module, "standardised_linear_model", one_iteration)
    generator = np.random.default_rng(0)
    features = generator.standard_normal((80, 6))
    labels, tokens = generator.integers(0, 2, 80), generator.integers(0, 3, 80)
    with warnings.catch_warnings(record=True) as escaped, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        compare_models({"hybrid": features, "mlm": 2 * features}, labels, tokens, num_resamples=5)
    assert [warning for warning in escaped if warning.category is ConvergenceWarning] == []
    (line,) = [record.getMessage() for record in caplog.records if "ConvergenceWarning" in record.getMessage()]
    # Two models, a token and a semantic probe each.
    assert line.startswith("geometry metrics of hybrid, mlm: 4 × ConvergenceWarning (first: lbfgs failed to converge")


def test_most_frequent_tokens():
    special = [0, 101, 102]
    token_ids = [[101, 7, 8, 8, 102, 0, 0], [101, 5, 9, 9, 5, 102], [101, 102, 0], [101, 4, 4, 4, 3, 3, 102]]
    # Ties (5 and 9) go to the token seen first; a text without real tokens gets -1.
    np.testing.assert_array_equal(most_frequent_tokens(token_ids, special), [8, 5, -1, 4])


# ----------------------------------------------------------------------------------------------------------------------
# The JSON summary


@pytest.fixture(scope="module")
def two_models() -> dict:
    """Two 'models' on 80 texts with 2 classes: one spread out, one squeezed into a narrow cone."""
    generator = np.random.default_rng(0)
    labels = generator.integers(0, 2, 80)
    tokens = generator.integers(0, 3, 80)
    spread = generator.standard_normal((80, 12)) + labels[:, None]
    narrow = 0.3 * generator.standard_normal((80, 10)) + 4.0
    comparison = compare_models(
        {"hybrid": spread, "mlm": narrow}, labels, tokens, ratio=("hybrid", "mlm"), num_resamples=100
    )
    return dict(labels=labels, tokens=tokens, spread=spread, comparison=comparison)


def test_sample_order_does_not_change_the_metrics(two_models):
    order = np.random.default_rng(3).permutation(80)
    features, labels = two_models["spread"], two_models["labels"]
    original = two_models["comparison"]["models"]["hybrid"]["metrics"]
    shuffled = geometry_metrics(features[order], labels[order], num_resamples=10)["metrics"]
    # The probes' held-out split follows the order, so only their accuracies may move.
    for key in set(geometry.METRIC_NAMES) - {"token_probe", "semantic_probe", "probe_gap"}:
        np.testing.assert_allclose(shuffled[key]["value"], original[key]["value"], rtol=1e-9, err_msg=key)


def test_summary_is_json_without_nan(two_models):
    comparison = two_models["comparison"]
    assert json.loads(json.dumps(comparison, allow_nan=False)) == comparison
    hybrid = comparison["models"]["hybrid"]
    assert (hybrid["num_samples"], hybrid["dim"], hybrid["num_classes"]) == (80, 12, 2)
    assert list(hybrid["metrics"]) == list(geometry.METRIC_NAMES)
    assert all(entry["value"] is not None for entry in hybrid["metrics"].values())


def test_bootstrap_intervals_cover_the_estimate_and_shrink_with_more_samples():
    generator = np.random.default_rng(0)
    widths = {}
    for num_samples in (100, 1600):
        labels = generator.integers(0, 2, num_samples)
        features = generator.standard_normal((num_samples, 8)) + labels[:, None]
        metrics = geometry_metrics(features, labels, num_resamples=200)["metrics"]
        for key in ("uniformity", "alignment", "effective_rank"):
            low, high = metrics[key]["ci95"]
            assert low <= metrics[key]["value"] <= high, key
            widths[key, num_samples] = high - low
    for key in ("uniformity", "alignment", "effective_rank"):
        # 16× the samples: about a quarter of the width.
        assert widths[key, 1600] < widths[key, 100] / 2, key


def test_uniformity_ratio_is_paired(two_models):
    comparison = two_models["comparison"]
    models = comparison["models"]
    ratio = comparison["uniformity_ratio"]
    hybrid, mlm = models["hybrid"]["metrics"]["uniformity"]["value"], models["mlm"]["metrics"]["uniformity"]["value"]
    assert ratio["value"] == pytest.approx(hybrid / mlm)
    assert ratio["value"] > 1  # the spread model is the more uniform
    assert ratio["ci95"][0] <= ratio["value"] <= ratio["ci95"][1]
    # The same features under the same resamples: every paired replicate is exactly 1.
    same = compare_models({"a": two_models["spread"], "b": two_models["spread"]}, ratio=("a", "b"), num_resamples=50)
    assert same["uniformity_ratio"]["ci95"] == [1.0, 1.0]


def test_single_class_metrics_are_not_applicable_with_a_reason():
    generator = np.random.default_rng(0)
    features = generator.standard_normal((60, 6))
    tokens = generator.integers(0, 3, 60)
    metrics = geometry_metrics(features, np.zeros(60, dtype=int), tokens, num_resamples=10)["metrics"]
    assert metrics["token_probe"]["value"] is not None
    for key in ("semantic_probe", "intra_class_distance", "inter_class_distance", "intra_inter_ratio"):
        assert metrics[key]["value"] is None
        assert "class" in metrics[key]["not_applicable"], key
    assert "semantic probe is not applicable" in metrics["probe_gap"]["not_applicable"]
    assert metrics["alignment"]["value"] > 0  # one class still has same-label pairs
    unlabelled = geometry_metrics(features, num_resamples=10)["metrics"]
    assert unlabelled["alignment"]["not_applicable"] == "no task labels were given"
    assert unlabelled["token_probe"]["not_applicable"] == "no token labels were given"


def test_small_samples_carry_a_warning_beside_the_number():
    generator = np.random.default_rng(0)
    few = geometry_metrics(generator.standard_normal((30, 4)), generator.integers(0, 2, 30), num_resamples=10)
    for key, entry in few["metrics"].items():
        if entry["value"] is not None:
            assert "only 30 samples" in entry["warning"], key
    enough = geometry_metrics(generator.standard_normal((60, 4)), num_resamples=10)
    assert not any("warning" in entry for entry in enough["metrics"].values())
    # The ratios between two models' uniformities too.
    pair = {name: generator.standard_normal((30, 4)) for name in ("a", "b")}
    ratios = compare_models(pair, ratio=("a", "b"), num_resamples=10)
    assert all("only 30 samples" in ratios[f"{name}_ratio"]["warning"] for name in ("uniformity", "centred_uniformity"))


def test_bad_input_is_rejected_with_the_fix():
    features = np.random.default_rng(0).standard_normal((10, 4))
    with pytest.raises(ValueError, match="bin the scores"):
        geometry_metrics(features, np.linspace(0, 5, 10), num_resamples=5)
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        geometry_metrics(features, np.zeros(9), num_resamples=5)
    with pytest.raises(ValueError, match="NaN"):
        geometry_metrics(np.full((10, 4), np.nan), num_resamples=5)
    with pytest.raises(ValueError, match="all zeros"):
        geometry_metrics(np.vstack([features, np.zeros(4)]), num_resamples=5)
    with pytest.raises(ValueError, match="same texts"):
        compare_models({"a": features, "b": features[:8]})


# ----------------------------------------------------------------------------------------------------------------------
# Markdown and plots


def test_markdown_summary(two_models):
    comparison = two_models["comparison"]
    single_class = compare_models(
        {"hybrid": two_models["spread"][:30], "mlm": two_models["spread"][:30] * 2},
        np.zeros(30),
        ratio=("hybrid", "mlm"),
        num_resamples=10,
    )
    text = render_markdown({"SST-2": {"mean": comparison}, "CoLA": {"attention": single_class}})
    for name in ("uniformity", "centred_uniformity"):
        ratio = comparison[f"{name}_ratio"]
        assert f"hybrid / mlm: {ratio['value']:.4g} [{ratio['ci95'][0]:.4g}, {ratio['ci95'][1]:.4g}]" in text
    assert "### uniformity after subtracting the mean feature" in text
    assert "## SST-2 — mean pooling" in text and "## CoLA — attention pooling" in text
    assert "n/a (a single class: inter-class distances need at least two classes)" in text
    assert "⚠ only 30 samples" in text


def test_plots_have_titles_labels_and_legends(two_models, tmp_path):
    comparison = two_models["comparison"]
    by_dataset = {"SST-2": comparison["models"], "MRPC": comparison["models"]}
    figures = {
        "Eigenvalue spectrum — SST-2": geometry.plot_eigenvalue_spectra(
            {"mean": comparison, "max": comparison}, "SST-2"
        ),
        "Effective rank (RankMe) — mean pooling": geometry.plot_effective_rank(by_dataset, "mean"),
        "Alignment vs uniformity — mean pooling": geometry.plot_alignment_uniformity(by_dataset, "mean"),
        "Token vs semantic probe — mean pooling": geometry.plot_probe_accuracies(by_dataset, "mean"),
        "Pooling ablation — SST-2": geometry.plot_pooling_ablation(
            {"mean": comparison["models"], "max": comparison["models"]}, "SST-2"
        ),
    }
    for index, (title, figure) in enumerate(figures.items()):
        titles = [figure.get_suptitle()] + [ax.get_title() for ax in figure.axes]
        assert title in titles
        for ax in figure.axes:
            assert ax.get_xlabel() and ax.get_ylabel()
            assert [text.get_text() for text in ax.get_legend().get_texts()]
        path = tmp_path / f"{index}.png"
        figure.savefig(path)
        assert path.stat().st_size > 1000
        for ax in figure.axes:  # beside the axes, where the legend hides no bar, point or reference line
            assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    labels = [text.get_text() for text in figures["Eigenvalue spectrum — SST-2"].axes[0].get_legend().get_texts()]
    assert labels == ["hybrid", "mlm"]
    # Wherever raw uniformity is plotted, so is the centred one, in a panel of its own.
    ablation, plane = figures["Pooling ablation — SST-2"], figures["Alignment vs uniformity — mean pooling"]
    assert [ax.get_title() for ax in ablation.axes] == ["uniformity", "uniformity after subtracting the mean feature"]
    for ax, metric in zip(ablation.axes, ("uniformity", "centred_uniformity")):
        heights = [
            bar.get_height() for container in ax.containers if isinstance(container, BarContainer) for bar in container
        ]
        expected = [comparison["models"][model]["metrics"][metric]["value"] for model in ("hybrid", "mlm")]
        assert heights == pytest.approx([value for value in expected for _ in ("mean", "max")])
    assert plane.axes[1].get_xlabel().startswith("uniformity after subtracting the mean feature")
    centred_x = [container.lines[0].get_xdata()[0] for container in plane.axes[1].containers]
    assert centred_x == pytest.approx(
        [comparison["models"][model]["metrics"]["centred_uniformity"]["value"] for model in ("hybrid", "mlm")]
    )


def test_every_bar_shows_its_value_and_the_probe_plot_its_chance_level():
    def model(uniformity: float | None, semantic: float, chance: float) -> dict:
        interval = {} if uniformity is None else {"ci95": [uniformity - 0.01, uniformity + 0.01]}
        return {
            "metrics": {
                "uniformity": {"value": uniformity, **interval},
                "token_probe": {"value": 0.4, "chance_accuracy": 0.05},
                "semantic_probe": {"value": semantic, "chance_accuracy": chance},
            }
        }

    models = {"hybrid": model(-0.0014, 0.6, 0.51), "mlm": model(-1.9, 0.7, 0.51), "random-init": model(None, 0.5, 0.51)}
    ablation = geometry.plot_pooling_ablation({"mean": models, "max": models}, "SST-2")
    labels = [text.get_text() for text in ablation.axes[0].texts if text.get_text()]
    # The collapsed encoder's bar is a sliver; its label shows it, and a missing value reads n/a.
    assert labels.count("-0.0014") == 2 and labels.count("-1.9") == 2 and labels.count("n/a") == 2
    probes = geometry.plot_probe_accuracies({"SST-2": models}, "mean")
    ax = probes.axes[0]
    chance_levels = sorted(
        {round(float(y), 4) for lines in ax.collections for y in lines.get_paths()[0].vertices[:, 1]}
    )
    assert 0.51 in chance_levels and 0.05 in chance_levels
    assert "chance (majority class)" in [text.get_text() for text in ax.get_legend().get_texts()]


def test_a_value_rounded_outside_its_interval_plots_with_no_error_bar_on_that_side(tmp_path):
    # As measured for a collapsed encoder: an alignment of 1e-15 beside a bootstrap CI of [3.9e-16, 9.1e-16].
    def model(alignment: float, interval: list[float]) -> dict:
        return {
            "metrics": {
                "alignment": {"value": alignment, "ci95": interval},
                "uniformity": {"value": 0.0, "ci95": [0.0, 0.0]},
            }
        }

    models = {"collapsed": model(1e-15, [3.9e-16, 9.1e-16]), "hybrid": model(1.3, [1.2, 1.4])}
    plane = geometry.plot_alignment_uniformity({"SST-2": models}, "mean")
    bars = geometry.plot_metric_bars({"SST-2": models}, "alignment", group_label="dataset", title="alignment")
    for index, figure in enumerate((plane, bars)):
        figure.savefig(tmp_path / f"{index}.png")
    collapsed = plane.axes[0].containers[0]
    _, alignment_bar = collapsed.lines[2]  # the uniformity (x) bars, then the alignment (y) bars
    ((_, bottom), (_, top)) = alignment_bar.get_segments()[0]
    assert (bottom, top) == pytest.approx((3.9e-16, 1e-15), rel=1e-9)


def test_identical_models_keep_their_own_marker_and_line_style(two_models):
    features, labels, tokens = two_models["spread"], two_models["labels"], two_models["tokens"]
    same = compare_models({"hybrid": features, "copy": features}, labels, tokens, num_resamples=10)
    spectra = geometry.plot_eigenvalue_spectra({"mean": same}, "SST-2")
    lines = {line.get_label(): line for line in spectra.axes[0].get_lines()}
    assert lines["hybrid"].get_marker() != lines["copy"].get_marker()
    assert lines["hybrid"].get_linestyle() != lines["copy"].get_linestyle()
    plane = geometry.plot_alignment_uniformity({"SST-2": same["models"]}, "mean")
    points = {container.get_label(): container for container in plane.axes[0].containers}
    assert points["hybrid"].lines[0].get_marker() != points["copy"].lines[0].get_marker()
    assert points["hybrid"].lines[2][0].get_linestyle() != points["copy"].lines[2][0].get_linestyle()


def test_a_model_without_a_spectrum_is_named_in_the_legend(two_models):
    features, labels = two_models["spread"], two_models["labels"]
    collapsed = np.tile(features[0], (len(features), 1))
    comparison = compare_models({"hybrid": features, "collapsed": collapsed}, labels, num_resamples=10)
    legend = geometry.plot_eigenvalue_spectra({"mean": comparison}, "SST-2").axes[0].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["hybrid", "collapsed: n/a"]


def test_a_comparison_without_uniformity_still_plots_its_panel_as_not_applicable():
    models = {"hybrid": {"metrics": {"alignment": {"value": 0.4}}}}
    ablation = geometry.plot_pooling_ablation({"mean": models}, "SST-2")
    assert [ax.get_title() for ax in ablation.axes] == ["uniformity"]
    assert "n/a" in [text.get_text() for text in ablation.axes[0].texts]
    plane = geometry.plot_alignment_uniformity({"SST-2": models}, "mean")
    assert len(plane.axes) == 1 and plane.axes[0].get_xlabel().startswith("uniformity")
