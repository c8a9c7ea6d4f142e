"""From run directories to tables: every ``metrics.json`` under them ends in exactly one cell (runs
of one identity averaged over their seeds, a seed counted once) or in the list of runs left out,
with its reason."""

import csv
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phuber.core.identity import key
from phuber.report.read import CURVES, Curve, LeftOut, read_run
from phuber.report.rows import Row, Table, labels

SOURCES = {"menon2020_paper": "paper", "mizrahi2021_rescience": "reproduction"}
Cell = tuple[Row, float]  # a row and its ρ


def _lists() -> defaultdict:
    return defaultdict(list)


@dataclass
class Runs:
    """What the run directories hold, per (row, ρ): final test accuracies (%), the best test
    accuracy over the epochs of the runs that scored the test set during training, and the
    curves; and one ``(path, reason)`` for every run left out."""

    cells: dict[Cell, list[float]] = field(default_factory=_lists)
    best: dict[Cell, list[float]] = field(default_factory=_lists)
    curves: dict[str, dict[Cell, list[Curve]]] = field(
        default_factory=lambda: {name: defaultdict(list) for name in CURVES}
    )
    left_out: list[tuple[Path, str]] = field(default_factory=list)
    points_left_out: list[tuple[Path, str]] = field(default_factory=list)  # of runs tabulated
    found: int = 0  # distinct metrics.json files under the directories

    @property
    def accounted(self) -> int:
        """Files in a cell plus files left out: the ``found`` ones, if nothing escaped."""
        return sum(len(v) for v in self.cells.values()) + len(self.left_out)


def metrics_files(dirs: list[Path]) -> list[Path]:
    """Every ``metrics.json`` under ``dirs``, through symbolic links too, each file once (by
    where it really is) however many ways lead to it; a link that loops is followed once."""
    found: dict[Path, Path] = {}
    for directory in dirs:
        seen: set[Path] = set()
        for folder, subfolders, files in os.walk(directory, followlinks=True):
            real = Path(folder).resolve()
            if real in seen:  # reached again through a link: its files are counted already
                subfolders.clear()
                continue
            seen.add(real)
            subfolders.sort()
            if "metrics.json" in files:
                path = Path(folder) / "metrics.json"
                found.setdefault(path.resolve(), path)
    return list(found.values())


def collect(dirs: list[Path]) -> Runs:
    """Read every ``metrics.json`` under ``dirs``; runs are grouped by their identity only."""
    runs = Runs()
    counted: dict[tuple[str, str], Path] = {}  # (identity, seeds) → the run counted for them
    files = metrics_files(dirs)
    runs.found = len(files)
    for path in files:
        try:
            run = read_run(path)
        except LeftOut as why:
            runs.left_out.append((path.parent, str(why)))
            continue
        replicate = (key(run.identity.settings), key(run.identity.seeds))
        if replicate in counted:
            seeds = ", ".join(f"{k}={v}" for k, v in run.identity.seeds.items())
            runs.left_out.append(
                (path.parent, f"the same run ({seeds}) as {counted[replicate]}: counted once")
            )
            continue
        counted[replicate] = path.parent
        runs.points_left_out += [(path.parent, why) for why in run.points_left_out]
        cell = (Row.of(run.identity), run.rho)
        runs.cells[cell].append(100 * run.test_acc)
        for name, curve in run.curves.items():
            runs.curves[name][cell].append(curve)
        test = run.curves.get("test_acc")
        if test:
            runs.best[cell].append(100 * max(run.test_acc, *(v for _, v in test)))
    return runs


def load_references() -> dict[tuple, dict[str, tuple[float, float | None]]]:
    """``{(dataset, model, loss, tau, clip, rho): {source: (mean, std)}}`` from the packaged CSV."""
    table: dict[tuple, dict[str, tuple[float, float | None]]] = defaultdict(dict)
    text = (Path(__file__).parent / "paper_results.csv").read_text()
    for row in csv.DictReader(text.splitlines()):
        ref = (
            row["dataset"],
            row["model"],
            row["loss"],
            float(row["tau"]) if row["tau"] else None,
            float(row["grad_clip_max_norm"]) if row["grad_clip_max_norm"] else None,
            float(row["corrupt_prob"]),
        )
        std = float(row["test_acc_std"]) if row["test_acc_std"] else None
        table[ref][SOURCES[row["source"]]] = (float(row["test_acc_mean"]), std)
    return table


def aggregate(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (``None`` for a single run: there is no spread)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def build(dirs: list[Path]) -> dict[str, Any]:
    """Everything the outputs need: ``groups`` (per table, label → ρ → cell), ``curves`` (per
    kind, (table, label, ρ) → the runs' curves), ``unfinished`` (the runs left out, with their
    reasons), ``points_left_out`` (points of tabulated runs' curves left out, with theirs),
    ``files`` (how many ``metrics.json`` were found) and ``accounted`` (how many ended in a cell
    or in the left-out list: ``files``, unless a file escaped)."""
    runs = collect(dirs)
    references = load_references()
    tables: dict[Table, dict[Row, dict[float, dict]]] = defaultdict(dict)
    for (row, rho), values in runs.cells.items():
        mean, std = aggregate(values)
        ref_key = row.reference_key(rho)
        ident = row.identity
        cell = {"mean": mean, "std": std, "n": len(values), "loss": ident.loss, "row": row.key}
        cell["loss_params"] = key(ident.loss_params)
        cell["clip"] = ident.get("hparams.grad_clip_max_norm")
        cell["clip_mode"] = ident.get("hparams.grad_clip_mode", "global")
        cell["refs"] = references.get(ref_key, {}) if ref_key else {}
        best = runs.best.get((row, rho), [])
        if len(best) == len(values):  # every run scored the test set during training
            cell["best_mean"], cell["best_std"] = aggregate(best)
        tables[row.table].setdefault(row, {})[rho] = cell
    groups: dict[Table, dict[str, dict[float, dict]]] = {}
    named: dict[Row, str] = {}
    for table in sorted(tables, key=lambda t: tuple(map(str, t))):
        rows = sorted(tables[table], key=Row.sort_key)
        named.update(labels(rows))
        groups[table] = {named[row]: tables[table][row] for row in rows}
    curves = {
        name: {(row.table, named[row], rho): c for (row, rho), c in found.items()}
        for name, found in runs.curves.items()
    }
    return {
        "groups": groups,
        "curves": curves,
        "unfinished": runs.left_out,
        "points_left_out": runs.points_left_out,
        "files": runs.found,
        "accounted": runs.accounted,
    }
