"""Figures of the synthetic experiments, with matplotlib alone (Agg when not shown)."""

from pathlib import Path
from typing import Any

import matplotlib

LABELS = {"logistic": "Logistic", "huberised": "Huberised", "phuber": "Partially Huberised"}


def _pyplot(show: bool):
    if not show:
        matplotlib.use("Agg")  # headless machines; also when the figure is only saved
    import matplotlib.pyplot as plt

    return plt


def finish(figure: Any, stem: Path, save: bool, show: bool) -> None:
    """Save ``stem``.png and .pdf if asked, show if asked, then free the figure."""
    plt = _pyplot(show)
    if save:
        figure.savefig(stem.with_suffix(".png"), dpi=150, bbox_inches="tight")
        figure.savefig(stem.with_suffix(".pdf"), bbox_inches="tight")
    if show:
        plt.show()
    plt.close(figure)


def long_servedio_boxplot(test_acc: dict[str, list[float]], corrupt_prob: float) -> Any:
    """Fig. 2a: test accuracy per loss over the repeats."""
    plt = _pyplot(False)
    figure, ax = plt.subplots(figsize=(5, 4))
    names = list(test_acc)
    ax.boxplot([test_acc[n] for n in names], showmeans=True)
    ax.set_xticks(range(1, len(names) + 1), [LABELS[n] for n in names])
    ax.set_ylabel("Test accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Long & Servedio, {len(test_acc[names[0]])} repeats, ρ = {corrupt_prob}")
    ax.grid(axis="y", alpha=0.3)
    return figure


def boundaries(x: Any, y: Any, weights: dict[str, Any]) -> Any:
    """One repeat's training points and each loss's decision boundary w·x = 0."""
    import numpy as np

    plt = _pyplot(False)
    figure, ax = plt.subplots(figsize=(5, 5))
    for label, marker in ((1.0, "+"), (-1.0, "_")):
        keep = y == label
        ax.scatter(x[keep, 0], x[keep, 1], marker=marker, s=20, label=f"label {label:+.0f}")
    t = np.linspace(-1.2, 1.2, 2)
    for name, w in weights.items():
        if abs(w[1]) > 1e-12:
            ax.plot(t, -w[0] * t / w[1], label=LABELS[name])
        else:
            ax.axvline(0.0, label=LABELS[name])
    ax.set_xlim(-1.2, 1.2)
    ax.set_ylim(-0.4, 0.4)
    ax.legend(fontsize=8)
    ax.set_title("Decision boundaries (first repeat)")
    return figure


def outliers_figure(results: dict[str, Any], names: list[str]) -> Any:
    """Fig. 2b: each loss's risk against θ, on the inliers and with the outliers, with θ*."""
    plt = _pyplot(False)
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.5))
    theta = results["theta"]
    for ax, name in zip(axes, names, strict=True):
        entry = results[name]
        for setting, style in (("inliers", "-"), ("all", "--")):
            label = "inliers" if setting == "inliers" else "inliers + outliers"
            (line,) = ax.plot(theta, entry[f"risk_{setting}"], style, label=label)
            ax.axvline(entry[f"theta_star_{setting}"], color=line.get_color(), ls=":", lw=1)
        ax.set_title(LABELS[name])
        ax.set_xlabel("θ")
        ax.set_ylabel("empirical risk")
        ax.legend(fontsize=8)
    figure.tight_layout()
    return figure
