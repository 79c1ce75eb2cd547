"""Representation geometry of frozen sentence features (SPEC §4): spectrum, effective rank, token vs semantic probes,
alignment and uniformity, class distances, anisotropy — with bootstrap confidence intervals, a markdown summary and
plots.

Everything here works on feature arrays `(num_samples, dim)` and runs in float64. Feature extraction and pooling live
in the probe's code; `run_representation_analysis.py` feeds their output to `compare_models` and renders the result.

Conventions shared by the metrics:
- "Pairs" are unordered pairs of distinct samples {i, j}, i ≠ j (a sample is never paired with itself).
- Alignment, uniformity, class distances and anisotropy use L2-normalised features; the spectrum, the effective rank
  and the probes use the raw features.
- A metric the data cannot define (one class, no labels, zero variance) raises `NotApplicable`; `geometry_metrics`
  turns that into an entry `{"value": None, "not_applicable": reason}`. Estimates from fewer than
  `MIN_RELIABLE_SAMPLES` samples carry a `"warning"` beside the number.
- Confidence intervals are 95% percentile intervals over `num_resamples` bootstrap resamples of the samples, drawn
  once per (dataset, pooling) from a seeded generator and shared by every metric and model, so that comparisons
  between models on the same texts are paired.
"""

import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..rankme import RANKME_EPSILON, ZERO_VARIANCE_TOLERANCE, rankme

MIN_RELIABLE_SAMPLES = 50
UNIFORMITY_TEMPERATURE = 2.0  # Wang & Isola's t
# Rows of the pairwise matrices processed at once: a (block, num_samples) float64 block is 40 MB at 5,000 samples.
PAIR_BLOCK_ROWS = 1024
# The Gram identity ‖x − y‖² = 2 − 2⟨x, y⟩ loses exact zeros to rounding (~1e-15); identical points must be at
# distance exactly 0 (a collapsed representation has uniformity exactly 0), and no real pair is this close.
ZERO_SQUARED_DISTANCE = 1e-10

# Metric keys of `geometry_metrics`, in SPEC order, with the names the summary and the plots print.
METRIC_NAMES = {
    "eigenvalues": "eigenvalues of the covariance",
    "spectral_entropy": "spectral entropy / log D",
    "effective_rank": "effective rank (RankMe)",
    "components_for_90_variance": "components for 90% variance",
    "stable_rank": "stable rank",
    "token_probe": "token probe accuracy",
    "semantic_probe": "semantic probe accuracy",
    "probe_gap": "semantic − token probe",
    "alignment": "alignment",
    "uniformity": "uniformity",
    "intra_class_distance": "intra-class distance",
    "inter_class_distance": "inter-class distance",
    "intra_inter_ratio": "intra / inter ratio",
    "anisotropy": "anisotropy (mean cosine)",
}


class NotApplicable(ValueError):
    """The metric is undefined for this data (e.g. one class); the message says why."""


# ----------------------------------------------------------------------------------------------------------------------
# Input checks


def as_feature_matrix(features: np.ndarray) -> np.ndarray:
    """Checks `features` `(num_samples, dim)` (finite, at least 2 samples and 2 dimensions); returns it as float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be a (num_samples, dim) array; got shape {features.shape}.")
    if features.shape[0] < 2 or features.shape[1] < 2:
        raise ValueError(f"features need at least 2 samples and 2 dimensions; got shape {features.shape}.")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinity; check the encoder's outputs (e.g. a fp16 overflow).")
    return features


def unit_rows(features: np.ndarray) -> np.ndarray:
    """L2-normalises each row of `(num_samples, dim)`; a zero row has no direction and is rejected."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(
            f"{int((norms == 0).sum())} feature vectors are all zeros and cannot be L2-normalised; "
            "drop those samples or check the pooling (e.g. a text with no real tokens)."
        )
    return features / norms


def class_codes(labels: Sequence | np.ndarray, num_samples: int, name: str = "labels") -> np.ndarray:
    """Maps discrete labels (ints, strings, integral floats) `(num_samples,)` to class codes 0..C−1 `(num_samples,)`."""
    labels = np.asarray(labels)
    if labels.shape != (num_samples,):
        raise ValueError(f"{name} must have shape ({num_samples},) to match the features; got {labels.shape}.")
    if labels.dtype.kind == "f" and not np.array_equal(labels, np.round(labels)):
        raise ValueError(
            f"{name} are continuous (e.g. an STS-B similarity score); class metrics need discrete labels: "
            "bin the scores first or pass None."
        )
    return np.unique(labels, return_inverse=True)[1]


# ----------------------------------------------------------------------------------------------------------------------
# 1–2. Spectrum and effective rank


@dataclass
class SpectrumMetrics:
    """Spectral summary of the centred features, all from one decomposition."""

    eigenvalues: list[float]  # of the covariance, descending, min(num_samples, dim) of them (the rest are 0)
    spectral_entropy: float  # entropy of the eigenvalues as a distribution, / log(dim): 1 = isotropic
    effective_rank: float  # RankMe over the singular values
    components_for_90_variance: int  # fewest leading eigenvalues holding ≥ 90% of the variance
    stable_rank: float  # Σσ² / σ₁²


SPECTRUM_KEYS = [field.name for field in fields(SpectrumMetrics)]


def principal_components(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Singular values `(r,)`, descending, and principal-component scores `(num_samples, r)` (= U·S) of the centred
    `features` `(num_samples, dim)`, r = min(num_samples, dim). Raises `NotApplicable` for zero variance.

    Computed from the eigendecomposition of the smaller Gram matrix (dim × dim or num_samples × num_samples): the
    same values as an SVD and several times faster; singular values below ~1e-8·σ₁ are lost to rounding, which
    RankMe's 1e-7 smoothing outweighs anyway.
    """
    features = as_feature_matrix(features)
    centred = features - features.mean(axis=0)
    # Threaded LAPACK is up to 10x slower here on a shared CPU (768 × 768: 1.9 s with the default threads, 0.8 s
    # with one, on a busy 2-core machine).
    with threadpool_limits(limits=1, user_api="blas"):
        if features.shape[0] >= features.shape[1]:
            eigenvalues, vectors = np.linalg.eigh(centred.T @ centred)
            scores = centred @ vectors
        else:
            eigenvalues, vectors = np.linalg.eigh(centred @ centred.T)
            scores = vectors * np.sqrt(np.clip(eigenvalues, 0, None))
    singular_values = np.sqrt(np.clip(eigenvalues[::-1], 0, None))  # eigh sorts ascending
    if singular_values[0] <= ZERO_VARIANCE_TOLERANCE * np.linalg.norm(features):
        raise NotApplicable("all features are identical (zero variance): the spectrum has no direction")
    return singular_values, scores[:, ::-1]


def spectrum_metrics(features: np.ndarray) -> SpectrumMetrics:
    """Spectrum, spectral entropy, effective rank, 90%-variance component count and stable rank of `features`
    `(num_samples, dim)`, centred; the covariance is the unbiased one, Xcᵀ Xc / (num_samples − 1)."""
    features = as_feature_matrix(features)
    return _spectrum_of(principal_components(features)[0], *features.shape)


def _spectrum_of(singular_values: np.ndarray, num_samples: int, dim: int) -> SpectrumMetrics:
    """`spectrum_metrics` from the singular values of the centred features."""
    eigenvalues = singular_values**2 / (num_samples - 1)
    variance_fractions = eigenvalues / eigenvalues.sum()
    nonzero = variance_fractions[variance_fractions > 0]
    return SpectrumMetrics(
        eigenvalues=eigenvalues.tolist(),
        spectral_entropy=float(-(nonzero * np.log(nonzero)).sum() / np.log(dim)),
        effective_rank=float(rankme(singular_values)),
        components_for_90_variance=int(np.searchsorted(np.cumsum(variance_fractions), 0.9) + 1),
        stable_rank=float(eigenvalues.sum() / eigenvalues[0]),
    )


def effective_rank_replicates(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """RankMe of `features` `(num_samples, dim)` resampled by `weights` `(num_resamples, num_samples)` (how often
    each sample is drawn), linearised: returns `(num_resamples,)`.

    An exact resample needs one decomposition each (num_resamples · N · D² flops, minutes at 5,000 × 768). Instead
    each resample's spectrum is the diagonal of its centred scatter matrix in the full sample's principal basis —
    the first-order perturbation of the eigenvalues, O(num_resamples · N · D). It equals the exact spectrum when
    the weights are all ones and leaves out the second-order spreading of nearly equal eigenvalues, which in a
    resample comes mostly from its duplicated points: exact resampled RankMe sits below the sample's own value
    (2,000 isotropic Gaussian points in 32-D: by 10 replicate standard deviations), while the linearised replicates
    are centred on it with about the same spread (measured: 0.0126 vs 0.0125 at D = 8, 0.146 vs 0.145 at D = 64).
    """
    return _resampled_rankme(principal_components(features)[1], weights)


def _resampled_rankme(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """`effective_rank_replicates` from the principal-component scores of the features."""
    counts = weights.sum(axis=1, keepdims=True)
    mean_scores = weights @ scores / counts
    scatter_diagonal = weights @ scores**2 - counts * mean_scores**2
    return rankme(np.sqrt(np.clip(scatter_diagonal, 0, None)))


# ----------------------------------------------------------------------------------------------------------------------
# 3. Token probe vs semantic probe


def most_frequent_tokens(token_ids: Sequence[Sequence[int]], special_token_ids: Sequence[int]) -> np.ndarray:
    """The most frequent non-special token id of each text `(num_texts,)`: the token probe's target.

    Ties go to the token seen first in the text. A text with no non-special token gets -1, which the probe then
    treats as one more class ("empty text").
    """
    special = set(special_token_ids)
    most_frequent = []
    for ids in token_ids:
        # Counter keeps first-seen order among equal counts, which breaks ties by position.
        counts = Counter(int(token) for token in ids if int(token) not in special)
        most_frequent.append(counts.most_common(1)[0][0] if counts else -1)
    return np.asarray(most_frequent, dtype=np.int64)


@dataclass
class ProbeResult:
    """Held-out accuracy of a linear probe, beside what always guessing the majority class scores."""

    accuracy: float
    chance_accuracy: float  # the training split's most frequent class, always predicted, on the held-out split
    num_samples: int  # samples used (training + held out), after dropping rare classes
    num_classes: int
    fraction_used: float  # num_samples / all samples given


def probe_accuracy(
    features: np.ndarray,
    targets: Sequence | np.ndarray,
    *,
    held_out_fraction: float = 0.25,
    inverse_regularization: float = 1.0,
    seed: int = 0,
) -> ProbeResult:
    """Held-out accuracy of a logistic-regression probe on standardised features.

    features: `(num_samples, dim)`; targets: `(num_samples,)` discrete labels. One stratified split, drawn with
    `seed`, holds out `held_out_fraction` of the samples; the probe (standardisation fit on the training part, then
    sklearn's LogisticRegression with C = `inverse_regularization`, fixed so that the token and semantic probes and
    all models are fit alike) is scored there. One split rather than k-fold: a token probe has tens to hundreds of
    classes, and one fit at 5,000 × 768 already takes seconds.

    Rare classes: a class needs about 1 / `held_out_fraction` samples to expect one in the held-out split; a token
    seen once can only be "learned" by memorising its one example, which the split forbids, so it would measure
    the class count, not the features. Rarer classes' samples are dropped and `fraction_used` says how many
    remain. Raises `NotApplicable` with fewer than two classes left.
    """
    if not 0 < held_out_fraction < 1:
        raise ValueError(f"held_out_fraction must lie strictly between 0 and 1; got {held_out_fraction}.")
    features = as_feature_matrix(features)
    codes = class_codes(targets, features.shape[0], "probe targets")
    class_sizes = np.bincount(codes)
    min_class_size = math.ceil(1 / held_out_fraction)
    kept = class_sizes[codes] >= min_class_size
    num_classes = int((class_sizes >= min_class_size).sum())
    if num_classes < 2:
        raise NotApplicable(
            f"fewer than two classes have at least {min_class_size} samples ({len(class_sizes)} classes in all): "
            "a probe needs two classes it can be tested on"
        )
    train_features, test_features, train_codes, test_codes = train_test_split(
        features[kept], codes[kept], test_size=held_out_fraction, stratify=codes[kept], random_state=seed
    )
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=inverse_regularization, max_iter=1000))
    # As in probing.fit_linear_probe: threaded BLAS makes these many small solves slower on a shared CPU (a 50-class
    # token probe at 5,000 × 768: 80 s with the default threads, 8.5 s with one, on a busy 2-core machine).
    with threadpool_limits(limits=1, user_api="blas"):
        probe.fit(train_features, train_codes)
        predictions = probe.predict(test_features)
    return ProbeResult(
        accuracy=float((predictions == test_codes).mean()),
        chance_accuracy=float((test_codes == np.bincount(train_codes).argmax()).mean()),
        num_samples=int(kept.sum()),
        num_classes=num_classes,
        fraction_used=float(kept.mean()),
    )


# ----------------------------------------------------------------------------------------------------------------------
# 4–6. Pairwise geometry on the unit sphere


def squared_distance_blocks(unit_features: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """Yields `(rows, block)`: squared distances `(len(rows), num_samples)` between unit rows `rows` and all rows,
    from Gram blocks so that the full (num_samples, num_samples) matrix is never held."""
    num_samples = unit_features.shape[0]
    for start in range(0, num_samples, PAIR_BLOCK_ROWS):
        rows = slice(start, min(start + PAIR_BLOCK_ROWS, num_samples))
        block = np.clip(2.0 - 2.0 * unit_features[rows] @ unit_features.T, 0.0, 4.0)
        block[block < ZERO_SQUARED_DISTANCE] = 0.0
        yield rows, block


def uniformity_replicates(unit_features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Uniformity (Wang & Isola 2020, t = 2) of unit features `(num_samples, dim)` under each row of `weights`
    `(num_resamples, num_samples)` (sample counts; a row of ones is the sample itself). Returns `(num_resamples,)`.

    uniformity = log( Σ_{i≠j} w_i w_j exp(−t‖x_i − x_j‖²) / Σ_{i≠j} w_i w_j ), i.e. the log mean kernel over all
    pairs of distinct samples; a resample's copies of one sample are not paired with each other. Exact: the kernel
    is formed block by block once and every resample is a quadratic form on it (2·N²·num_resamples flops, a few
    seconds at N = 5,000 and 1,000 resamples). Ranges from −2t (= −4) on a uniform high-dimensional sphere to 0 for
    a collapsed representation. A resample holding a single distinct sample gives NaN.
    """
    weighted_kernel_sum = np.zeros(weights.shape[0])
    for rows, squared_distances in squared_distance_blocks(unit_features):
        kernel = np.exp(-UNIFORMITY_TEMPERATURE * squared_distances)
        weighted_kernel_sum += ((kernel @ weights.T) * weights[:, rows].T).sum(axis=0)
    # The kernel is 1 on the diagonal: remove the pairs of a sample with itself.
    self_pairs = (weights**2).sum(axis=1)
    distinct_pairs = weights.sum(axis=1) ** 2 - self_pairs
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log((weighted_kernel_sum - self_pairs) / distinct_pairs)


def alignment_replicates(unit_features: np.ndarray, codes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Alignment (Wang & Isola 2020, α = 2): mean over same-label pairs i ≠ j of ‖x_i − x_j‖² on unit features
    `(num_samples, dim)` with class codes `(num_samples,)`, under each row of `weights` `(num_resamples,
    num_samples)`. Returns `(num_resamples,)`; a resample without any same-label pair gives NaN.

    Exact in closed form: within a class, Σ_{i,j} w_i w_j ‖x_i − x_j‖² = 2(Σ w_i)² − 2‖Σ w_i x_i‖² for unit rows
    (the i = j terms are 0), so no pairwise matrix is needed.
    """
    if np.bincount(codes).max() < 2:
        raise NotApplicable("no two samples share a label, so there is no same-label pair")
    distance_sum = np.zeros(weights.shape[0])
    pair_count = np.zeros(weights.shape[0])
    for code in range(codes.max() + 1):
        class_weights = weights[:, codes == code]
        class_total = class_weights.sum(axis=1)
        weighted_sum = class_weights @ unit_features[codes == code]
        distance_sum += 2 * class_total**2 - 2 * (weighted_sum**2).sum(axis=1)
        pair_count += class_total**2 - (class_weights**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Cancellation can leave −1e-16 where all same-label points coincide.
        return np.maximum(distance_sum / pair_count, 0.0)


def class_distances(unit_features: np.ndarray, codes: np.ndarray) -> tuple[float, float]:
    """Mean Euclidean distance (not squared) between unit features `(num_samples, dim)` over same-label pairs and
    over different-label pairs (pairs i ≠ j), given class codes `(num_samples,)`: `(intra, inter)`."""
    class_sizes = np.bincount(codes)
    if len(class_sizes) < 2:
        raise NotApplicable("a single class: inter-class distances need at least two classes")
    if class_sizes.max() < 2:
        raise NotApplicable("no two samples share a label, so there is no intra-class pair")
    same_label_sum = 0.0
    all_pairs_sum = 0.0
    for rows, squared_distances in squared_distance_blocks(unit_features):
        distances = np.sqrt(squared_distances)
        same_label = codes[rows, None] == codes[None, :]
        same_label_sum += distances[same_label].sum()
        all_pairs_sum += distances.sum()
    # Self-pairs are at distance 0: they only need leaving out of the counts.
    same_label_pairs = (class_sizes**2).sum() - len(codes)
    different_label_pairs = len(codes) ** 2 - (class_sizes**2).sum()
    return same_label_sum / same_label_pairs, (all_pairs_sum - same_label_sum) / different_label_pairs


def anisotropy(unit_features: np.ndarray) -> float:
    """Mean cosine similarity over all pairs i ≠ j of unit features `(num_samples, dim)` — the expectation that
    random pairs estimate, computed exactly as (‖Σ x_i‖² − N) / (N(N − 1)). 0 for isotropic features, 1 if all
    point the same way."""
    num_samples = unit_features.shape[0]
    total = unit_features.sum(axis=0)
    return float((total @ total - num_samples) / (num_samples * (num_samples - 1)))


# ----------------------------------------------------------------------------------------------------------------------
# Bootstrap


def bootstrap_weights(num_samples: int, num_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """`(num_resamples, num_samples)` counts: how often each sample is drawn in each resample with replacement."""
    generator = np.random.default_rng(seed)
    return generator.multinomial(num_samples, np.full(num_samples, 1.0 / num_samples), size=num_resamples).astype(
        np.float64
    )


def percentile_interval(replicates: np.ndarray) -> list[float]:
    """95% percentile interval `[low, high]` of bootstrap replicates `(num_resamples,)`; NaN replicates (resamples
    on which the statistic is undefined, possible only for tiny samples) are left out."""
    low, high = np.nanpercentile(replicates, [2.5, 97.5])
    return [float(low), float(high)]


# ----------------------------------------------------------------------------------------------------------------------
# All metrics for one (model, dataset, pooling), and the comparison of models


def _estimate_entry(point_and_replicates: np.ndarray) -> dict[str, Any]:
    """Entry from `(1 + num_resamples,)` values whose first is the point estimate (weights all ones)."""
    return {"value": float(point_and_replicates[0]), "ci95": percentile_interval(point_and_replicates[1:])}


def _probe_entry(result: ProbeResult) -> dict[str, Any]:
    entry = asdict(result)
    return {"value": entry.pop("accuracy"), **entry}


def _probe_gap_entry(token_entry: dict[str, Any], semantic_entry: dict[str, Any]) -> dict[str, Any]:
    for name, entry in (("token", token_entry), ("semantic", semantic_entry)):
        if entry["value"] is None:
            raise NotApplicable(f"the {name} probe is not applicable: {entry['not_applicable']}")
    return {"value": semantic_entry["value"] - token_entry["value"]}


CLASS_DISTANCE_KEYS = ["intra_class_distance", "inter_class_distance", "intra_inter_ratio"]


def _class_distance_entries(unit_features: np.ndarray, codes: np.ndarray) -> list[dict[str, Any]]:
    """Entries of `CLASS_DISTANCE_KEYS`."""
    intra, inter = class_distances(unit_features, codes)
    if inter == 0:
        raise NotApplicable("every different-label pair coincides (inter-class distance 0): the ratio is undefined")
    return [{"value": float(intra)}, {"value": float(inter)}, {"value": float(intra / inter)}]


def _spectrum_entries(features: np.ndarray, weights_with_point: np.ndarray) -> list[dict[str, Any]]:
    """Entries of `SPECTRUM_KEYS`, the effective rank with its CI."""
    features = as_feature_matrix(features)
    singular_values, scores = principal_components(features)  # one decomposition for the spectrum and its CI
    spectrum = asdict(_spectrum_of(singular_values, *features.shape))
    spectrum["effective_rank"] = _estimate_entry(_resampled_rankme(scores, weights_with_point))
    return [value if isinstance(value, dict) else {"value": value} for value in spectrum.values()]


def _entries(keys: Sequence[str], compute: Callable[[], Sequence[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """`compute`'s entries under `keys`; if the data cannot define these metrics, each entry says why instead."""
    try:
        return dict(zip(keys, compute(), strict=True))
    except NotApplicable as reason:
        return {key: {"value": None, "not_applicable": str(reason)} for key in keys}


def _require(values: Any, what: str) -> Any:
    if values is None:
        raise NotApplicable(f"no {what} were given")
    return values


def _geometry_and_uniformity(
    features: np.ndarray,
    labels: Sequence | np.ndarray | None,
    token_labels: Sequence | np.ndarray | None,
    weights: np.ndarray,
    seed: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """`geometry_metrics` under the given resample weights `(num_resamples, num_samples)`, plus the uniformity point
    estimate followed by its replicates `(1 + num_resamples,)`, for ratios between models."""
    features = as_feature_matrix(features)
    num_samples, dim = features.shape
    unit_features = unit_rows(features)
    codes = None if labels is None else class_codes(labels, num_samples)
    weights_with_point = np.vstack([np.ones(num_samples), weights])
    uniformity = uniformity_replicates(unit_features, weights_with_point)

    def probe(targets: Sequence | np.ndarray | None, what: str) -> dict[str, Any]:
        return _probe_entry(probe_accuracy(features, _require(targets, what), seed=seed))

    metrics = _entries(SPECTRUM_KEYS, lambda: _spectrum_entries(features, weights_with_point))
    metrics |= _entries(["token_probe"], lambda: [probe(token_labels, "token labels")])
    metrics |= _entries(["semantic_probe"], lambda: [probe(labels, "task labels")])
    metrics |= _entries(["probe_gap"], lambda: [_probe_gap_entry(metrics["token_probe"], metrics["semantic_probe"])])
    metrics |= _entries(
        ["alignment"],
        lambda: [
            _estimate_entry(alignment_replicates(unit_features, _require(codes, "task labels"), weights_with_point))
        ],
    )
    metrics["uniformity"] = _estimate_entry(uniformity)
    metrics |= _entries(
        CLASS_DISTANCE_KEYS, lambda: _class_distance_entries(unit_features, _require(codes, "task labels"))
    )
    metrics["anisotropy"] = {"value": anisotropy(unit_features)}
    for entry in metrics.values():
        used = entry.get("num_samples", num_samples)
        if entry["value"] is not None and used < MIN_RELIABLE_SAMPLES:
            entry["warning"] = f"only {used} samples (< {MIN_RELIABLE_SAMPLES}): an unstable estimate"
    summary = {
        "num_samples": num_samples,
        "dim": dim,
        "num_classes": None if codes is None else int(codes.max() + 1),
        "bootstrap": {"num_resamples": len(weights), "seed": seed, "interval": "95% percentile"},
        "metrics": {key: metrics[key] for key in METRIC_NAMES},
    }
    return summary, uniformity


def geometry_metrics(
    features: np.ndarray,
    labels: Sequence | np.ndarray | None = None,
    token_labels: Sequence | np.ndarray | None = None,
    *,
    num_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Every SPEC §4 metric of one (model, dataset, pooling) as a JSON-able dict.

    features: `(num_samples, dim)`; labels: `(num_samples,)` discrete task labels, or None (e.g. a regression task);
    token_labels: `(num_samples,)` each text's most frequent non-special token (`most_frequent_tokens`), or None.
    Returns `{"num_samples", "dim", "num_classes", "bootstrap", "metrics"}`; `metrics` maps each key of
    `METRIC_NAMES` to `{"value": ...}`, plus `"ci95": [low, high]` for effective rank, alignment and uniformity, the
    probe's chance level and sample counts for the probes, `"warning"` below `MIN_RELIABLE_SAMPLES` samples, or
    `{"value": None, "not_applicable": reason}`. `seed` draws the resamples and the probes' held-out split.
    """
    num_samples = as_feature_matrix(features).shape[0]
    weights = bootstrap_weights(num_samples, num_resamples, seed)
    return _geometry_and_uniformity(features, labels, token_labels, weights, seed)[0]


def _uniformity_ratio_entry(numerator: np.ndarray, denominator: np.ndarray) -> dict[str, Any]:
    """Ratio of two models' uniformity `(1 + num_resamples,)` (point estimate first), resample by resample."""
    if denominator[0] == 0:
        raise NotApplicable("the denominator model's uniformity is 0 (its features collapsed to one point)")
    with np.errstate(invalid="ignore", divide="ignore"):
        return _estimate_entry(numerator / denominator)


def compare_models(
    features_by_model: Mapping[str, np.ndarray],
    labels: Sequence | np.ndarray | None = None,
    token_labels: Sequence | np.ndarray | None = None,
    *,
    ratio: tuple[str, str] | None = None,
    num_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """`geometry_metrics` for several models' features of the same texts (one dataset and pooling), on shared
    resamples, plus the paired uniformity ratio `ratio = (numerator, denominator)`, e.g. `("hybrid", "mlm")`.

    features_by_model: name → `(num_samples, dim_of_that_model)`, rows aligned (row i is the same text for every
    model). The ratio's CI is a paired bootstrap: each resample draws the same texts for both models, so the
    variation the models share (which texts are hard) cancels. As in the paper, ratio > 1 means the numerator is
    the more uniform (its uniformity is further below 0). Returns `{"num_samples", "models": {name: metrics},
    "uniformity_ratio": {"numerator", "denominator", "value", "ci95"}}` (the last only with `ratio`).
    """
    sizes = {name: np.shape(features)[0] for name, features in features_by_model.items()}
    if not sizes or len(set(sizes.values())) != 1:
        raise ValueError(f"compare_models needs the features of the same texts for every model; got sizes {sizes}.")
    if ratio is not None and not set(ratio) <= set(sizes):
        raise ValueError(f"ratio {ratio} names a model that is not among {sorted(sizes)}.")
    num_samples = next(iter(sizes.values()))
    weights = bootstrap_weights(num_samples, num_resamples, seed)
    models, uniformity = {}, {}
    for name, features in features_by_model.items():
        models[name], uniformity[name] = _geometry_and_uniformity(features, labels, token_labels, weights, seed)
    comparison: dict[str, Any] = {"num_samples": num_samples, "models": models}
    if ratio is not None:
        numerator, denominator = ratio
        replicates = uniformity[numerator], uniformity[denominator]
        entry = _entries(["uniformity_ratio"], lambda: [_uniformity_ratio_entry(*replicates)])
        comparison["uniformity_ratio"] = {
            "numerator": numerator,
            "denominator": denominator,
            **entry["uniformity_ratio"],
        }
    return comparison


# ----------------------------------------------------------------------------------------------------------------------
# Markdown summary


def format_entry(entry: Mapping[str, Any]) -> str:
    """One metric entry as table text: `value [low, high]`, the probe's chance level, n/a with its reason, ⚠."""
    if entry["value"] is None:
        return f"n/a ({entry['not_applicable']})"
    text = f"{entry['value']:.4g}"
    if "ci95" in entry:
        text += f" [{entry['ci95'][0]:.4g}, {entry['ci95'][1]:.4g}]"
    if "chance_accuracy" in entry:
        text += f" (chance {entry['chance_accuracy']:.3g})"
    if "warning" in entry:
        text += " ⚠"
    return text


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def render_markdown(
    results: Mapping[str, Mapping[str, Mapping[str, Any]]], title: str = "Representation geometry", preamble: str = ""
) -> str:
    """Markdown summary of `results[dataset][pooling]` = a `compare_models` result (the same models in each): the
    `preamble` (e.g. how the features were obtained) under the title, then the paper's table (uniformity per dataset
    and pooling, models side by side, their ratio with its CI), then every metric per dataset and pooling with the
    warnings beneath."""
    lines = [
        f"# {title}",
        "",
        *([preamble, ""] if preamble else []),
        "95% bootstrap percentile intervals in brackets; ⚠ marks an estimate from few samples.",
        "",
    ]
    overview = []
    for dataset, by_pooling in results.items():
        for pooling, comparison in by_pooling.items():
            ratio = comparison.get("uniformity_ratio")
            ratio_text = (
                [] if ratio is None else [f"{ratio['numerator']} / {ratio['denominator']}: {format_entry(ratio)}"]
            )
            uniformity = [format_entry(metrics["metrics"]["uniformity"]) for metrics in comparison["models"].values()]
            overview.append([dataset, pooling, *uniformity, *ratio_text])
    first = next(iter(next(iter(results.values())).values()))
    ratio_header = ["ratio (> 1: numerator more uniform)"] if "uniformity_ratio" in first else []
    lines += ["## Uniformity (lower is more uniform)", ""]
    lines += _markdown_table(["dataset", "pooling", *first["models"], *ratio_header], overview) + [""]
    for dataset, by_pooling in results.items():
        for pooling, comparison in by_pooling.items():
            models = comparison["models"]
            any_model = next(iter(models.values()))
            classes = any_model["num_classes"]
            lines += [
                f"## {dataset} — {pooling} pooling",
                "",
                f"{comparison['num_samples']} samples, {classes if classes is not None else 'no'} classes, "
                f"{any_model['bootstrap']['num_resamples']} bootstrap resamples.",
                "",
            ]
            rows = [
                [name, *(format_entry(metrics["metrics"][key]) for metrics in models.values())]
                for key, name in METRIC_NAMES.items()
                if key != "eigenvalues"
            ]
            lines += _markdown_table(["metric", *models], rows) + [""]
            warnings = {
                entry["warning"]
                for metrics in models.values()
                for entry in metrics["metrics"].values()
                if "warning" in entry
            }
            lines += [f"⚠ {warning}" for warning in sorted(warnings)] + ([""] if warnings else [])
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------------
# Plots: each returns a matplotlib Figure (no pyplot state); save it with `figure.savefig(path)`.


def _value_and_error(entry: Mapping[str, Any]) -> tuple[float, list[float]]:
    """The value (NaN when not applicable) and its asymmetric error bar `[below, above]` (0 without a CI)."""
    if entry["value"] is None:
        return float("nan"), [0.0, 0.0]
    low, high = entry.get("ci95", [entry["value"], entry["value"]])
    return entry["value"], [entry["value"] - low, high - entry["value"]]


def _bars(ax: Any, positions: np.ndarray, values: Sequence[float], width: float, **bar_options: Any) -> None:
    """Bars at `positions`; a not-applicable value (NaN) is marked "n/a" instead of silently missing."""
    ax.bar(positions, values, width, **bar_options)
    for position, value in zip(positions, values):
        if np.isnan(value):
            ax.text(position, 0, "n/a", ha="center", va="bottom", fontsize=8)
    ax.set_xlim(-0.5, len(positions) - 0.5)


def plot_eigenvalue_spectra(comparisons_by_pooling: Mapping[str, Mapping[str, Any]], dataset: str) -> Figure:
    """One panel per pooling, one line per model: the covariance eigenvalues as fractions of the total variance
    (log scale), so that models of different scales compare."""
    figure = Figure(figsize=(5 * len(comparisons_by_pooling), 4), layout="constrained")
    axes = figure.subplots(1, len(comparisons_by_pooling), squeeze=False)[0]
    for ax, (pooling, comparison) in zip(axes, comparisons_by_pooling.items()):
        for model, metrics in comparison["models"].items():
            eigenvalues = metrics["metrics"]["eigenvalues"]["value"]
            if eigenvalues is not None:
                fractions = np.asarray(eigenvalues) / np.sum(eigenvalues)
                ax.plot(np.arange(1, len(fractions) + 1), fractions, label=model)
        ax.set(yscale="log", title=f"{pooling} pooling", xlabel="component", ylabel="fraction of variance")
        ax.legend()
    figure.suptitle(f"Eigenvalue spectrum — {dataset}")
    return figure


def plot_metric_bars(
    metrics_by_group: Mapping[str, Mapping[str, Mapping[str, Any]]], metric: str, *, group_label: str, title: str
) -> Figure:
    """Grouped bars of one metric: `metrics_by_group[group][model]` is a `geometry_metrics` result; one group per
    dataset or pooling, one bar per model, CI error bars where there is a CI, "n/a" where not applicable."""
    groups = list(metrics_by_group)
    models = list(dict.fromkeys(model for by_model in metrics_by_group.values() for model in by_model))
    width = 0.8 / len(models)
    figure = Figure(figsize=(max(5, 1.5 * len(groups)), 4), layout="constrained")
    ax = figure.subplots()
    for index, model in enumerate(models):
        positions = np.arange(len(groups)) + (index - (len(models) - 1) / 2) * width
        entries = [metrics_by_group[group][model]["metrics"][metric] for group in groups]
        values, errors = zip(*map(_value_and_error, entries))
        _bars(ax, positions, values, width, yerr=np.transpose(errors), capsize=3, label=model)
    ax.set(xticks=np.arange(len(groups)), xticklabels=groups, xlabel=group_label, ylabel=METRIC_NAMES[metric])
    ax.set_title(title)
    ax.legend()
    return figure


def plot_effective_rank(metrics_by_dataset: Mapping[str, Mapping[str, Mapping[str, Any]]], pooling: str) -> Figure:
    """Effective rank per dataset and model (`metrics_by_dataset[dataset][model]`), with bootstrap CIs."""
    return plot_metric_bars(
        metrics_by_dataset,
        "effective_rank",
        group_label="dataset",
        title=f"Effective rank (RankMe) — {pooling} pooling",
    )


def plot_pooling_ablation(
    metrics_by_pooling: Mapping[str, Mapping[str, Mapping[str, Any]]], dataset: str, metric: str = "uniformity"
) -> Figure:
    """One metric per pooling and model (`metrics_by_pooling[pooling][model]`) on one dataset."""
    return plot_metric_bars(
        metrics_by_pooling, metric, group_label="pooling", title=f"Pooling ablation: {METRIC_NAMES[metric]} — {dataset}"
    )


def plot_alignment_uniformity(
    metrics_by_dataset: Mapping[str, Mapping[str, Mapping[str, Any]]], pooling: str
) -> Figure:
    """Wang & Isola's plane: uniformity (x) against alignment (y), one colour per model, each point named by its
    dataset, CI error bars on both axes; lower-left is better. Datasets without alignment (no labels) are left out."""
    figure = Figure(figsize=(6, 5), layout="constrained")
    ax = figure.subplots()
    models = list(dict.fromkeys(model for by_model in metrics_by_dataset.values() for model in by_model))
    for model in models:
        points = [
            (dataset, by_model[model]["metrics"]["uniformity"], by_model[model]["metrics"]["alignment"])
            for dataset, by_model in metrics_by_dataset.items()
            if by_model[model]["metrics"]["alignment"]["value"] is not None
        ]
        if not points:
            continue
        datasets, uniformity, alignment = zip(*points)
        x, x_errors = zip(*map(_value_and_error, uniformity))
        y, y_errors = zip(*map(_value_and_error, alignment))
        ax.errorbar(x, y, xerr=np.transpose(x_errors), yerr=np.transpose(y_errors), fmt="o", capsize=3, label=model)
        for dataset, x_value, y_value in zip(datasets, x, y):
            ax.annotate(dataset, (x_value, y_value), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(xlabel="uniformity (lower: more uniform)", ylabel="alignment (lower: closer same-label pairs)")
    ax.set_title(f"Alignment vs uniformity — {pooling} pooling")
    ax.legend()
    return figure


def plot_probe_accuracies(metrics_by_dataset: Mapping[str, Mapping[str, Mapping[str, Any]]], pooling: str) -> Figure:
    """Token probe (surface form) beside semantic probe (task label) accuracy for each dataset and model."""
    bars = [
        (f"{dataset}\n{model}", metrics["metrics"])
        for dataset, by_model in metrics_by_dataset.items()
        for model, metrics in by_model.items()
    ]
    figure = Figure(figsize=(max(5, 1.2 * len(bars)), 4), layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(bars))
    for offset, key, label in (
        (-0.2, "token_probe", "token probe (surface form)"),
        (0.2, "semantic_probe", "semantic probe (task label)"),
    ):
        values = [_value_and_error(metrics[key])[0] for _, metrics in bars]
        _bars(ax, positions + offset, values, 0.4, label=label)
    ax.set(xticks=positions, xticklabels=[name for name, _ in bars], ylim=(0, 1))
    ax.set(xlabel="dataset and model", ylabel="held-out accuracy")
    ax.set_title(f"Token vs semantic probe — {pooling} pooling")
    ax.legend()
    return figure
