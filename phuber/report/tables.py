"""The report as text: Markdown tables (ours beside the paper's and the earlier reproduction's
numbers) and one CSV row per cell."""

import csv
import io
from pathlib import Path
from typing import Any

from phuber.core.files import atomic_write
from phuber.report.aggregate import SOURCES
from phuber.report.rows import Table, rho_text


def title(table: Table) -> str:
    dataset, model, noise = table
    return f"{dataset} / {model}, {noise} noise"


def shown(value: float) -> str:
    """An accuracy as the tables show it: one decimal (after rounding away float noise, so
    that means equal up to rounding, 90.05 and 90.04999999999999, show alike)."""
    return f"{round(value, 9):.1f}"


def _cell(c: dict | None) -> str:
    if c is None:
        return ""
    spread = "" if c["std"] is None else f" ± {shown(c['std'])}"
    best = f", best {shown(c['best_mean'])}" if "best_mean" in c else ""
    return f"{shown(c['mean'])}{spread}{best} (n={c['n']})"


def average_ranks(rows: dict[str, dict[float, dict]]) -> dict[str, tuple[float, int]]:
    """Per row, its mean rank over the table's noise rates and how many rates it has: at each
    rate the rows with a cell there are ranked by mean accuracy as the table shows it (1 =
    best; rows whose means show alike tie and share the mean of their ranks), as robust-loss
    papers rank methods across noise settings."""
    ranks: dict[str, list[float]] = {label: [] for label in rows}
    for rho in {rho for row in rows.values() for rho in row}:
        means = sorted(
            (float(shown(row[rho]["mean"])), label) for label, row in rows.items() if rho in row
        )
        means.reverse()
        i = 0
        while i < len(means):
            j = i
            while j + 1 < len(means) and means[j + 1][0] == means[i][0]:
                j += 1
            for _, label in means[i : j + 1]:
                ranks[label].append((i + j) / 2 + 1)
            i = j + 1
    return {label: (sum(r) / len(r), len(r)) for label, r in ranks.items() if r}


def _rank_text(rank: tuple[float, int], total: int) -> str:
    return f"{rank[0]:.1f}" + ("" if rank[1] == total else f" ({rank[1]} of {total})")


def markdown(report: dict[str, Any]) -> str:
    lines: list[str] = []
    for table, rows in report["groups"].items():
        rhos = sorted({rho for row in rows.values() for rho in row})
        heads = " | ".join(f"ρ = {rho_text(rho)}" for rho in rhos)
        lines += [f"### {title(table)}: test accuracy (%), mean ± std over seeds", ""]
        if any("best_mean" in c for row in rows.values() for c in row.values()):
            lines += [
                "At the end of training; *best*: the mean over seeds of each run's best test "
                "accuracy over the epochs it was scored (the early-stopping oracle).",
                "",
            ]
        lines += [
            "*avg rank*: the mean over the noise rates of the row's rank by mean accuracy "
            "(1 = best; where a row lacks rates, over those it has).",
            "",
        ]
        lines += [f"| loss | {heads} | avg rank |", "|:--|" + "--:|" * (len(rhos) + 1)]
        ranks = average_ranks(rows)
        has_refs = False
        for label, row in rows.items():
            cells = " | ".join(_cell(row.get(rho)) for rho in rhos)
            lines.append(f"| {label} | {cells} | {_rank_text(ranks[label], len(rhos))} |")
            has_refs |= any(c["refs"] for c in row.values())
        lines.append("")
        if has_refs:
            lines += ["Compared with the references (ours − theirs, in points):", ""]
            lines += [f"| loss | source | {heads} |", "|:--|:--|" + "--:|" * len(rhos)]
            for label, row in rows.items():
                for source in SOURCES.values():
                    cells = []
                    for rho in rhos:
                        c = row.get(rho)
                        ref = c["refs"].get(source) if c else None
                        diff = f"{round(c['mean'] - ref[0], 9):+.1f}" if ref else ""
                        cells.append(f"{shown(ref[0])} ({diff})" if ref else "")
                    if any(cells):
                        lines.append(f"| {label} | {source} | " + " | ".join(cells) + " |")
            lines.append("")
    if report["unfinished"]:
        lines += ["### Runs not included", ""]
        lines += [f"- `{path}`: {why}" for path, why in report["unfinished"]] + [""]
    if report.get("points_left_out"):
        lines += ["### Points of curves not included (the runs are)", ""]
        lines += [f"- `{path}`: {why}" for path, why in report["points_left_out"]] + [""]
    return "\n".join(lines)


CSV_HEAD = [
    "dataset",
    "model",
    "noise_type",
    "label",
    "loss",
    "loss_params",
    "grad_clip_max_norm",
    "grad_clip_mode",
    "corrupt_prob",
    "n_runs",
    "test_acc_mean",
    "test_acc_std",
    "best_test_acc_mean",
    "best_test_acc_std",
    *(f"{s}_{k}" for s in SOURCES.values() for k in ("mean", "diff")),
    "avg_rank",
    "settings",
]


def csv_rows(report: dict[str, Any]) -> list[list[Any]]:
    """One row per cell, in ``CSV_HEAD``'s order."""
    out = []
    for table, rows in report["groups"].items():
        ranks = average_ranks(rows)
        for label, row in rows.items():
            for rho, c in sorted(row.items()):
                line = [*table, label, c["loss"], c["loss_params"]]
                line += ["" if c["clip"] is None else c["clip"], c["clip_mode"], rho, c["n"]]
                line += [round(c["mean"], 3), _round(c["std"])]
                line += [_round(c.get("best_mean")), _round(c.get("best_std"))]
                for source in SOURCES.values():
                    ref = c["refs"].get(source)
                    line += [ref[0], round(c["mean"] - ref[0], 3)] if ref else ["", ""]
                out.append([*line, round(ranks[label][0], 3), c["row"]])
    return out


def write_csv(report: dict[str, Any], path: Path) -> None:
    def write(f: Any) -> None:
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(CSV_HEAD)
        writer.writerows(csv_rows(report))
        f.write(text.getvalue().encode())

    atomic_write(path, write)


def _round(x: float | None) -> Any:
    return "" if x is None else round(x, 3)
