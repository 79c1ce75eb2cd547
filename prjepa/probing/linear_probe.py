"""The linear probe: a standardised logistic regression (ridge for scores) whose L2 strength is chosen by k-fold
cross-validation on the training split alone, then refit on all of it; and the `glue` metric that scores it."""

import functools
import importlib.resources
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..utils import collapsed_warnings, single_blas_thread, standardised_linear_model

# scikit-learn, SciPy's statistics and evaluate (about 1.5 s to import together) load when a probe is fitted or
# scored, not with the probe command's `--help`.
if TYPE_CHECKING:
    import evaluate
    from sklearn.pipeline import Pipeline

logger = logging.getLogger(__name__)

LOCAL_GLUE_METRIC = str(importlib.resources.files("prjepa") / "metrics" / "glue")


@dataclass
class LinearProbe:
    """A standardise → logistic regression (classes) / ridge (scores) pipeline refit on the whole training split.

    regularisation: the chosen C (inverse L2 strength, logistic regression) or alpha (L2 strength, ridge).
    cv_scores: mean k-fold score on the training split for every grid value (`scoring` names the scorer).
    """

    model: "Pipeline"
    regularisation_name: str
    regularisation: float
    cv_scores: dict[float, float]
    scoring: str
    folds: int

    def predict(self, features: np.ndarray) -> np.ndarray:
        """`(n, d)` → `(n,)` class ids or scores."""
        return self.model.predict(features)

    @property
    def at_grid_edge(self) -> bool:
        """The chosen value is the grid's smallest or largest: a wider grid might have scored better."""
        return len(self.cv_scores) > 1 and self.regularisation in (min(self.cv_scores), max(self.cv_scores))


def check_classes(
    labels: np.ndarray, folds: int, where: str = "the training labels", names: Sequence[str] | None = None
) -> None:
    """A classifier's training labels `(n,)` must hold two classes, each with at least two examples (stratified k-fold
    cross-validation then runs min(`folds`, smallest class) folds); `names` (by class id) name them in the error."""
    counts = Counter(labels.tolist())
    if len(counts) < 2:
        only = next(iter(counts), None)
        shown = "none" if only is None else names[only] if names else only
        raise ValueError(f"{where} holds a single class ({shown}): a classifier needs two or more.")
    rare = sorted(str(names[label] if names else label) for label, count in counts.items() if count < 2)
    if rare:
        raise ValueError(
            f"{where}: class {', '.join(rare)} has a single example; {folds}-fold cross-validation needs at least two "
            "per class (use more training data, e.g. a larger --max_train_samples)."
        )


def check_scores(scores: np.ndarray, folds: int, where: str = "the training split") -> None:
    """A regressor's training scores `(n,)` must fill `folds` folds with at least two each: k-fold cross-validation
    cannot split fewer rows than folds, and R² is undefined on a single score (every grid value would score NaN and
    the choice be arbitrary)."""
    if len(scores) < 2 * folds:
        raise ValueError(
            f"{where} has {len(scores)} examples; {folds}-fold cross-validation needs at least {2 * folds} (two per "
            "fold): use more training data (e.g. a larger --max_train_samples) or fewer --cv_folds."
        )


def fit_linear_probe(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    is_regression: bool,
    grid: Sequence[float],
    folds: int = 5,
    seed: int = 0,
    scoring: str | None = None,
    fold_features: Callable[[np.ndarray], np.ndarray] | None = None,
) -> LinearProbe:
    """Chooses the L2 strength by `folds`-fold cross-validation on the training data alone (stratified for classes,
    shuffled with `seed`), then refits on all of it. features `(n, d)`, labels `(n,)`; `scoring` is a scikit-learn
    scorer name (default accuracy / R²). Nothing of the validation split is seen.

    fold_features: for features learnt from the training labels themselves (a trained pooler's), maps the rows a fold
        trains on to the `(n, d)` features of every row learnt from those rows alone, so that no fold is scored on
        rows its features were learnt from; `features`, learnt from every row, are then only refitted on.
    """
    from sklearn.base import clone
    from sklearn.metrics import check_scoring
    from sklearn.model_selection import KFold, StratifiedKFold

    if len(grid) == 0:
        raise ValueError("The regularisation grid is empty; give at least one value.")
    if is_regression:
        check_scores(labels, folds)
        name, splitter = "alpha", KFold(folds, shuffle=True, random_state=seed)
    else:
        check_classes(labels, folds)
        smallest = min(Counter(labels.tolist()).values())
        if smallest < folds:  # stratified folds need an example of every class each
            logger.warning(
                f"The smallest class has {smallest} training examples: {smallest}-fold cross-validation instead of "
                f"{folds}-fold (more training data, e.g. a larger --max_train_samples, keeps {folds})."
            )
            folds = smallest
        # lbfgs fits the multinomial model for more than two classes.
        name, splitter = "C", StratifiedKFold(folds, shuffle=True, random_state=seed)
    model = standardised_linear_model(is_regression)
    scorer = check_scoring(model, scoring=scoring)

    def fitted(value: float, inputs: np.ndarray, rows: np.ndarray | slice) -> "Pipeline":
        return clone(model).set_params(**{f"head__{name}": value}).fit(inputs[rows], labels[rows])

    fold_scores = []
    with single_blas_thread(), collapsed_warnings(logger, f"{name} grid search"):
        for train_rows, test_rows in splitter.split(features, labels):
            inputs = features if fold_features is None else fold_features(train_rows)
            fold_scores.append(
                [scorer(fitted(value, inputs, train_rows), inputs[test_rows], labels[test_rows]) for value in grid]
            )
        mean_scores = np.mean(fold_scores, axis=0)
        chosen = float(grid[int(np.argmax(mean_scores))])  # the first of equal scores, as GridSearchCV
        final = fitted(chosen, features, slice(None))
    cv_scores = {float(value): float(score) for value, score in zip(grid, mean_scores)}
    return LinearProbe(
        model=final,
        regularisation_name=name,
        regularisation=chosen,
        cv_scores=cv_scores,
        scoring=scoring or ("r2" if is_regression else "accuracy"),
        folds=folds,
    )


@functools.cache
def load_glue_metric(config_name: str) -> "tuple[evaluate.EvaluationModule, str]":
    """The Hub's `glue` metric for `config_name`, or this project's copy (`metrics/glue`) when the Hub cannot be
    reached; with the name of the implementation used."""
    import evaluate

    try:
        return evaluate.load("glue", config_name), "glue (Hugging Face Hub)"
    except (OSError, ImportError) as error:
        logger.info("Hub glue metric unavailable (%s); using %s", error, LOCAL_GLUE_METRIC)
        return evaluate.load(LOCAL_GLUE_METRIC, config_name), f"glue (local: {LOCAL_GLUE_METRIC})"


def cosine_spearman(first: np.ndarray, second: np.ndarray, scores: np.ndarray) -> float:
    """Unsupervised STS: Spearman correlation between cos(u, v) `(n,)` of two views `(n, d)` and the gold scores."""
    from scipy.stats import spearmanr

    # In float64: the cosines of near-parallel float32 features differ in digits float32 rounds away, tying their ranks.
    first, second = first.astype(np.float64), second.astype(np.float64)
    cosine = (first * second).sum(axis=1) / (np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)).clip(1e-12)
    return float(spearmanr(cosine, scores)[0])
