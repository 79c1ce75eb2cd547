"""What every plot of the project shares: each series (model, objective, recipe) drawn with its own marker and line
style, so that series which coincide (a model compared with itself, two runs stuck on one plateau) stay visible on top
of each other; and legends beside the axes, where they cover no data and no reference line. Standard library only:
the plotting functions import matplotlib themselves."""

from collections.abc import Sequence
from typing import Any

# Eleven markers and four line styles (coprime counts): the first four series differ in both, the first eleven in their
# marker, and no two of the first 44 share both.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">")
LINESTYLES = ("-", "--", ":", "-.")
# Markers along a line of many points (a spectrum, a training log): enough to tell the series apart, few enough to
# leave the line readable.
MARKERS_PER_LINE = 12


def series_styles(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Line options for `Axes.plot` / `Axes.errorbar` per series name, in order: its own marker, hollow so that a
    marker under it shows through, and its own line style."""
    return {
        name: {
            "marker": MARKERS[index % len(MARKERS)],
            "markerfacecolor": "none",
            "linestyle": LINESTYLES[index % len(LINESTYLES)],
        }
        for index, name in enumerate(names)
    }


def marker_spacing(num_points: int) -> int:
    """`markevery` for a line of `num_points`: every point of a short line, `MARKERS_PER_LINE` along a long one."""
    return max(1, num_points // MARKERS_PER_LINE)


def legend_outside(axes: Any) -> None:
    """The axes' legend to their right, outside the area where data and reference lines are drawn; none for axes
    that name nothing (a panel of a training log that no run logged)."""
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8)
