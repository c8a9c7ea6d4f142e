"""The report's figures: test accuracy against ρ per table, and per-epoch curves (memorised
noise, test accuracy). matplotlib is imported only here, when a figure is drawn."""

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

from phuber.core.files import atomic_write
from phuber.report.read import Curve
from phuber.report.rows import rho_text
from phuber.report.tables import title


def plot(report: dict[str, Any], path: Path) -> None:
    """Test accuracy against ρ, one line per row, error bars = std over seeds; a table with a
    single ρ is a bar per row instead."""
    groups = report["groups"]
    figure, axes = _panels(len(groups), 8, 4.5)
    for ax, (table, rows) in zip(axes, groups.items(), strict=True):
        rhos = sorted({rho for row in rows.values() for rho in row})
        looks = _looks(len(rows))
        if len(rhos) == 1:
            cells = [row[rhos[0]] for row in rows.values()]
            ax.barh(
                range(len(cells)),
                [c["mean"] for c in cells],
                xerr=[c["std"] or 0.0 for c in cells],
                color=[color for color, _ in looks],
                capsize=3,
            )
            ax.set_yticks(range(len(cells)), list(rows), fontsize=7)
            ax.invert_yaxis()
            heading = f"{title(table)}, ρ = {rho_text(rhos[0])}"
            _style(ax, heading, "test accuracy (%)", "", legend=False)
            continue
        for (label, row), (color, marker) in zip(rows.items(), looks, strict=True):
            ours = sorted(row)
            ax.errorbar(
                ours,
                [row[r]["mean"] for r in ours],
                yerr=[row[r]["std"] or 0.0 for r in ours],
                marker=marker,
                color=color,
                capsize=3,
                label=label,
            )
        _style(ax, title(table), "label corruption probability ρ", "test accuracy (%)")
    _save(figure, path)


def _looks(n: int) -> list[tuple[Any, str]]:
    """``n`` distinguishable (colour, marker) pairs: up to 20 colours, markers cycling."""
    import matplotlib

    colors = matplotlib.colormaps["tab20" if n > 10 else "tab10"].colors
    markers = "osD^vP*Xh<>p"
    return [(colors[i % len(colors)], markers[i % len(markers)]) for i in range(n)]


# The curves drawn, top to bottom: history key → y-axis label.
_KINDS = {
    "train_noisy_memorised": "corrupted examples memorised (%)",
    "test_acc": "test accuracy (%)",
}


def plot_memorisation(report: dict[str, Any], path: Path) -> bool:
    """Against the epoch, one column per table and ρ, one line per row (mean over seeds): the
    share of corrupted training examples predicted as their (wrong) given label (top), and test
    accuracy where it was scored during training (bottom). One legend: a row has one look in
    every panel. ``False`` (and no file) when no run recorded either."""
    panels: dict[str, dict[tuple, dict[str, list[Curve]]]] = {k: defaultdict(dict) for k in _KINDS}
    for kind in _KINDS:
        for (table, label, rho), runs in report["curves"][kind].items():
            panels[kind][(*table, rho)][label] = runs
    columns = sorted(set().union(*(panels[k] for k in _KINDS)), key=str)
    rows = [kind for kind in _KINDS if panels[kind]]
    if not rows:
        return False
    labels = list(dict.fromkeys(label for g in report["groups"].values() for label in g))
    looks = dict(zip(labels, _looks(len(labels)), strict=True))
    figure, axes = _panels(len(columns), 4, 3.6, len(rows))
    drawn: dict[str, Any] = {}
    for r, kind in enumerate(rows):
        for c, column in enumerate(columns):
            ax = axes[r * len(columns) + c]
            for label, runs in panels[kind].get(column, {}).items():
                epochs, mean = _mean_curve(runs)
                color, marker = looks[label]
                x = [e + 1 for e in epochs]
                (drawn[label],) = ax.plot(x, mean, marker=marker, markersize=3, color=color)
            dataset, model, noise, rho = column
            heading = f"{dataset} / {model}\n{noise} noise, ρ = {rho_text(rho)}"
            _style(ax, heading, "epoch", _KINDS[kind], legend=False)
            ax.title.set_fontsize(9)
    order = [label for label in labels if label in drawn]
    handles = [drawn[label] for label in order]
    figure.legend(handles, order, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    _save(figure, path)
    return True


def _mean_curve(runs: list[Curve]) -> tuple[list[int], list[float]]:
    """The epochs every run has, and the mean value (in %) over runs at each."""
    common = sorted(set.intersection(*(set(e for e, _ in run) for run in runs)))
    values = [dict(run) for run in runs]
    return common, [100 * sum(v[e] for v in values) / len(values) for e in common]


def _panels(n: int, width: float, height: float, rows: int = 1) -> tuple[Any, Any]:
    """``rows`` rows of ``n`` panels (flattened, row by row), drawn with the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(rows, n, figsize=(width * n, height * rows), squeeze=False)
    return figure, axes.ravel()


def _style(ax: Any, heading: str, xlabel: str, ylabel: str, legend: bool = True) -> None:
    ax.set_title(heading)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend:  # beside the panel, where it hides no line
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _save(figure: Any, path: Path) -> None:
    """Draw into memory, then write atomically: a full disk is a ``StorageError``, and an older
    figure stays whole."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150, bbox_inches="tight")  # legend beside panels
    plt.close(figure)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
