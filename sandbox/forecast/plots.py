"""The report's charts, as self-contained ``data:image/png;base64`` URIs.

Figures are built with matplotlib's object API (``Figure`` renders through Agg on its own), so
nothing touches pyplot's global state or needs a display, and the report embeds each PNG inline.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from sandbox.forecast.results import Series
from sandbox.forecast.stats import Estimate

DPI = 110
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
           "#000000", "#999999", "#8C564B", "#17BECF", "#BCBD22")  # fmt: skip
TEXT = "#222222"
GRID = "#e5e5e5"


def _figure(width: float = 7.2, height: float = 3.0) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    ax: Axes = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(colors=TEXT, labelsize=9)
    return fig, ax


def _legend(ax: Axes, labels: Sequence[str]) -> None:
    """Short labels go beside the axes; long ones below, where they do not squeeze the plot."""
    if len(labels) < 2:
        return
    if max(len(label) for label in labels) <= 16:
        ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    else:
        ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22),
                  ncol=min(3, len(labels)))  # fmt: skip


def _data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _arrays(points: Sequence[Estimate]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def col(name: str) -> np.ndarray:
        return np.array([np.nan if getattr(p, name) is None else getattr(p, name) for p in points])

    return col("value"), col("low"), col("high")


def time_series(
    steps: Sequence[int],
    series: Sequence[Series],
    *,
    percent: bool,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
) -> str:
    """One line per series over the steps, with its 95% interval as a band.

    Args:
        steps: The x values (step indices).
        series: Lines; a None point leaves a gap.
        percent: Values are shares in [0, 1], shown as percentages.
        ylabel: Y axis label.
        ylim: Fixed y range (a likert scale), instead of fitting the data.
    """
    fig, ax = _figure(6.4, 2.9)
    x = np.asarray(steps)
    for i, line in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        value, low, high = _arrays(line.points)
        ax.fill_between(x, low, high, color=colour, alpha=0.15, linewidth=0)
        ax.plot(x, value, marker="o", markersize=4, color=colour, label=line.label, linewidth=2)
        if len(x) == 1:  # a band needs two points to show; draw the interval as a bar instead
            ax.errorbar(x, value, yerr=[value - low, high - value], color=colour, capsize=4)
    ax.set_xlabel("step", color=TEXT, fontsize=9)
    ax.set_ylabel(ylabel, color=TEXT, fontsize=9)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(x) == 1:
        ax.set_xlim(x[0] - 1, x[0] + 1)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if percent:
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    _legend(ax, [line.label for line in series])
    return _data_uri(fig)


def grouped_bars(
    categories: Sequence[str],
    bars: Mapping[str, Sequence[float | None]],
    *,
    percent: bool,
    ylabel: str,
    intervals: Mapping[str, Sequence[tuple[float | None, float | None]]] | None = None,
    xlabel: str = "",
    width: float | None = None,
) -> str:
    """Bars grouped by category, one bar per key of ``bars``, optionally with interval whiskers.

    Args:
        categories: X axis groups (segment values, scale points).
        bars: Label -> one value per category (None draws nothing).
        percent: Values are shares in [0, 1].
        ylabel: Y axis label.
        intervals: Label -> (low, high) per category, drawn as error bars.
        xlabel: X axis label.
        width: Figure width in inches; by default it grows with the number of bars.
    """
    width_in = width or min(9.0, max(5.0, 0.35 * len(categories) * max(1, len(bars)) + 2.5))
    fig, ax = _figure(width_in, 2.9)
    x = np.arange(len(categories))
    width = 0.8 / max(1, len(bars))
    for i, (label, values) in enumerate(bars.items()):
        heights = np.array([np.nan if v is None else v for v in values], dtype=float)
        offset = x - 0.4 + width * (i + 0.5)
        yerr = None
        if intervals and label in intervals:
            lows = np.array([np.nan if lo is None else lo for lo, _ in intervals[label]], float)
            highs = np.array([np.nan if hi is None else hi for _, hi in intervals[label]], float)
            yerr = np.nan_to_num(np.vstack([heights - lows, highs - heights]), nan=0.0)
        ax.bar(offset, np.nan_to_num(heights), width * 0.92, label=label,
               color=PALETTE[i % len(PALETTE)], yerr=yerr, capsize=2,
               error_kw={"elinewidth": 0.8, "ecolor": "#555555"})  # fmt: skip
    ax.set_xticks(x, [str(c) for c in categories], fontsize=9)
    ax.set_ylabel(ylabel, color=TEXT, fontsize=9)
    if xlabel:
        ax.set_xlabel(xlabel, color=TEXT, fontsize=9)
    if percent:
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    _legend(ax, list(bars))
    return _data_uri(fig)


def forest(
    labels: Sequence[str],
    estimates: Sequence[tuple[float, float, float]],
    *,
    xlabel: str,
) -> str:
    """Effects with their intervals as a forest plot: one row per label, a line at zero.

    Args:
        labels: Row labels, top to bottom.
        estimates: (value, low, high) per row.
        xlabel: X axis label.
    """
    fig, ax = _figure(7.2, max(1.6, 0.38 * len(labels) + 0.9))
    y = np.arange(len(labels))[::-1]
    values = np.array([e[0] for e in estimates], float)
    lows = np.array([e[1] for e in estimates], float)
    highs = np.array([e[2] for e in estimates], float)
    ax.axvline(0, color="#888888", linewidth=1, linestyle="--")
    ax.errorbar(values, y, xerr=[values - lows, highs - values], fmt="o", color=PALETTE[0],
                ecolor=PALETTE[0], capsize=3, markersize=5)  # fmt: skip
    ax.set_yticks(y, list(labels), fontsize=9)
    ax.set_xlabel(xlabel, color=TEXT, fontsize=9)
    return _data_uri(fig)
