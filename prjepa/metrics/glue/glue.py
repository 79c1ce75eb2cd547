"""GLUE metric for `evaluate`, computed locally with scikit-learn and SciPy.

Same configurations, input features and output keys as the Hub's `glue` metric, so a probe gives the same numbers on
a machine that cannot reach the Hub:

    metric = evaluate.load("path/to/metrics/glue", "mrpc")
    metric.compute(predictions=[0, 1, 1], references=[0, 1, 0])  # {'accuracy': 0.667, 'f1': 0.667}
"""

import datasets
import evaluate
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

_DESCRIPTION = "GLUE benchmark metric: accuracy, F1, Matthews correlation or Pearson/Spearman correlation per task."

_CITATION = """\
@inproceedings{wang2019glue,
  title={{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and Levy, Omer and Bowman, Samuel R.},
  booktitle={International Conference on Learning Representations},
  year={2019}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted labels (integers), or scores (floats) for `stsb`.
    references: gold labels (integers), or gold scores (floats) for `stsb`.
Returns, per configuration:
    cola: `matthews_correlation`;
    stsb: `pearson`, `spearmanr`;
    mrpc, qqp: `accuracy`, `f1` (F1 of label 1);
    sst2, mnli, mnli_matched, mnli_mismatched, qnli, rte, wnli, hans: `accuracy`.
"""

ACCURACY_CONFIGS = ("sst2", "mnli", "mnli_mismatched", "mnli_matched", "qnli", "rte", "wnli", "hans")
CONFIGS = ACCURACY_CONFIGS + ("cola", "stsb", "mrpc", "qqp")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Glue(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in CONFIGS:
            raise KeyError(f"Unknown GLUE metric configuration {self.config_name!r}; choose one of {list(CONFIGS)}.")
        value_type = "float32" if self.config_name == "stsb" else "int64"
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value(value_type), "references": datasets.Value(value_type)}
            ),
            format="numpy",
        )

    def _compute(self, predictions, references) -> dict[str, float]:
        if self.config_name == "cola":
            return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}
        if self.config_name == "stsb":
            return {
                "pearson": float(pearsonr(predictions, references)[0]),
                "spearmanr": float(spearmanr(predictions, references)[0]),
            }
        scores = {"accuracy": float(accuracy_score(references, predictions))}
        if self.config_name in ("mrpc", "qqp"):
            scores["f1"] = float(f1_score(references, predictions))
        return scores
