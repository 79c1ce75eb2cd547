"""The geometry metrics of docs/method.md §4.2 on feature arrays `(num_samples, dim)`, in float64: eigenvalue
spectrum, spectral entropy, effective rank and stable rank; token vs semantic probe; alignment, uniformity, class
distances and anisotropy on the unit sphere. Metrics with a bootstrap CI also come as `*_replicates` under resample
weights."""

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np

from ..rankme import ZERO_VARIANCE_TOLERANCE, has_no_variance, rankme
from ..utils import single_blas_thread, standardised_linear_model

UNIFORMITY_TEMPERATURE = 2.0  # Wang & Isola's t
# Rows of the pairwise matrices processed at once: a (block, num_samples) float64 block is 40 MB at 5,000 samples.
PAIR_BLOCK_ROWS = 1024
# The Gram identity ‖x − y‖² = 2 − 2⟨x, y⟩ loses exact zeros to rounding (~1e-15); identical points must be at
# distance exactly 0 (a collapsed representation has uniformity exactly 0), and no real pair is this close.
ZERO_SQUARED_DISTANCE = 1e-10

# Metric keys of `geometry_metrics`, in the order of docs/method.md §4.2, with the names the summary and the plots
# print.
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
    "centred_uniformity": "uniformity after subtracting the mean feature",
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


def centred_unit_rows(features: np.ndarray) -> np.ndarray:
    """L2-normalised rows of `(num_samples, dim)` after subtracting the mean feature.

    Anisotropy (every feature sharing one large common direction) pushes raw uniformity toward 0 whatever the
    features' spread around that direction; centring measures that spread alone. A feature equal to the mean has no
    direction: then the metric does not apply (every feature is the mean once the representation has collapsed).
    """
    centred = features - features.mean(axis=0)
    norms = np.linalg.norm(centred, axis=1)
    if (norms <= ZERO_VARIANCE_TOLERANCE * max(np.linalg.norm(features, axis=1).max(), 1.0)).any():
        raise NotApplicable("a feature equals the mean feature, so it has no direction once centred")
    return centred / norms[:, None]


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
    if has_no_variance(features):
        raise NotApplicable("all features are identical (zero variance): the spectrum has no direction")
    centred = features - features.mean(axis=0)
    with single_blas_thread():
        if features.shape[0] >= features.shape[1]:
            eigenvalues, vectors = np.linalg.eigh(centred.T @ centred)
            scores = centred @ vectors
        else:
            eigenvalues, vectors = np.linalg.eigh(centred @ centred.T)
            scores = vectors * np.sqrt(np.clip(eigenvalues, 0, None))
    singular_values = np.sqrt(np.clip(eigenvalues[::-1], 0, None))  # eigh sorts ascending
    return singular_values, scores[:, ::-1]


def spectrum_metrics(features: np.ndarray) -> SpectrumMetrics:
    """Spectrum, spectral entropy, effective rank, 90%-variance component count and stable rank of `features`
    `(num_samples, dim)`, centred; the covariance is the unbiased one, Xcᵀ Xc / (num_samples − 1)."""
    features = as_feature_matrix(features)
    return spectrum_from_singular_values(principal_components(features)[0], *features.shape)


def spectrum_from_singular_values(singular_values: np.ndarray, num_samples: int, dim: int) -> SpectrumMetrics:
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
    return rankme_replicates_from_scores(principal_components(features)[1], weights)


def rankme_replicates_from_scores(scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """`effective_rank_replicates` from the principal-component scores `(num_samples, r)` of the features."""
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
    logistic regression with C = `inverse_regularization`, fixed so that the token and semantic probes and
    all models are fit alike) is scored there. One split rather than k-fold: a token probe has tens to hundreds of
    classes, and one fit at 5,000 × 768 already takes seconds.

    Rare classes: a class needs about 1 / `held_out_fraction` samples to expect one in the held-out split; a token
    seen once can only be "learned" by memorising its one example, which the split forbids, so it would measure
    the class count, not the features. Rarer classes' samples are dropped and `fraction_used` says how many
    remain. Raises `NotApplicable` with fewer than two classes left.
    """
    from sklearn.model_selection import train_test_split  # not at the top: the analysis's --help needs no scikit-learn

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
    probe = standardised_linear_model(C=inverse_regularization)
    with single_blas_thread():
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


def centred_uniformity_replicates(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Uniformity of `(num_samples, dim)` features after subtracting the mean feature (`centred_unit_rows`), under
    each row of `weights` `(num_resamples, num_samples)`, each resample centred on its own mean. Returns
    `(num_resamples,)`.

    Exact in the pairs and first order in the centre: a resample's uniformity about the sample's mean μ plus
    ∇_μ·(μ_r − μ), the gradient taken at the sample. Centring once on μ would leave out the mean's own sampling
    error, which is O(1/√N) where features are skewed (one heavy-tailed dimension): intervals about half as wide
    as resampling finds. (The exact resamples also shift by a second-order term, which this leaves out.) The
    gradient, with c_i = x_i − μ, u_i = c_i / ‖c_i‖, k_ij the kernel and S = Σ_{i≠j} k_ij:
    ∇_μ = −(4t / S) Σ_i (I − u_i u_iᵀ) Σ_{j≠i} k_ij u_j / ‖c_i‖.
    """
    unit_features = centred_unit_rows(features)
    mean = features.mean(axis=0)
    norms = np.linalg.norm(features - mean, axis=1)
    kernel_sum, neighbours = 0.0, np.empty_like(unit_features)
    for rows, squared_distances in squared_distance_blocks(unit_features):
        kernel = np.exp(-UNIFORMITY_TEMPERATURE * squared_distances)
        kernel_sum += kernel.sum()
        neighbours[rows] = kernel @ unit_features - unit_features[rows]  # k_ii = 1: without the sample itself
    kernel_sum -= unit_features.shape[0]
    tangent = neighbours - unit_features * (unit_features * neighbours).sum(axis=1, keepdims=True)
    gradient = -4 * UNIFORMITY_TEMPERATURE / kernel_sum * (tangent / norms[:, None]).sum(axis=0)
    resample_means = weights @ features / weights.sum(axis=1, keepdims=True)
    return uniformity_replicates(unit_features, weights) + (resample_means - mean) @ gradient


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
    class_sizes = class_sizes[class_sizes > 0]  # codes need not number the classes from 0 without gaps
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
