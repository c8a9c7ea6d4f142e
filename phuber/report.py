"""From run directories to the paper's tables: ``python -m phuber.report DIR [...] [--out OUT]``.

Reads every ``metrics.json`` under the given sweep or run directories and groups completed runs by
their identity (every setting that changes a result except the seeds): test accuracy is averaged
only over runs of one identity (mean and sample standard deviation; a seed counted once). Prints
one Markdown table per data set, model and noise type (rows: identities without ρ, labelled by
what tells them apart; columns: ρ), and writes ``report.md``, ``report.csv``, ``report.png`` and,
for noisy runs, ``memorisation.png`` into OUT (default: the first DIR). Where a row is the paper's
setting, the paper's and the earlier reproduction's numbers stand beside ours. Every run left out
(unfinished, unreadable, a duplicate) is named with the reason.
"""

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phuber.identity import RunIdentity

LOSS_ORDER = ["ce", "pytorch_ce", "linear", "gce", "phuber_ce", "phuber_gce"]
LOSS_LABELS = {
    "ce": "CE",
    "CrossEntropyLoss": "CE (PyTorch)",
    "linear": "Linear",
    "gce": "GCE",
    "phuber_ce": "PHuber-CE",
    "phuber_gce": "PHuber-GCE",
}
SOURCES = {"menon2020_paper": "paper", "mizrahi2021_rescience": "reproduction"}
RHO = "dataset.train.corrupt_prob"
# The settings of the paper's tables: only runs with these are compared with its numbers (and
# the earlier reproduction's), besides symmetric noise and global clipping.
PAPER_SETTINGS = {
    ("mnist", "lenet"): {"hparams.epochs": 20, "hparams.batch_size": 32},
    ("cifar10", "resnet50"): {"hparams.epochs": 400, "hparams.batch_size": 64},
    ("cifar100", "resnet50"): {"hparams.epochs": 200, "hparams.batch_size": 128},
}
# Keys a row's label already shows through the loss's name and the clipping.
_LABELLED = ("loss.", "hparams.grad_clip_max_norm", "hparams.grad_clip_mode", RHO)


@dataclass(frozen=True)
class Row:
    """One row of a table: an identity without ρ (the column)."""

    key: str  # the identity's settings without ρ, as canonical JSON
    identity: RunIdentity = field(compare=False, hash=False)  # one run's (any of the row's)

    @property
    def table(self) -> tuple[str, str, str]:
        """Data set, model and noise type: one table each."""
        ident = self.identity
        return (ident.get("dataset.name"), ident.model, ident.get("dataset.train.noise_type"))

    def label(self, varying: list[str]) -> str:
        ident = self.identity
        label = LOSS_LABELS.get(ident.loss, ident.loss)
        clip = ident.get("hparams.grad_clip_max_norm")
        if clip is not None:
            mode = ident.get("hparams.grad_clip_mode", "global")
            detail = [] if clip == 0.1 else [_num(clip)]
            detail += [] if mode == "global" else [mode]
            label += " + clipping" + (f" ({', '.join(detail)})" if detail else "")
        for name, value in ident.loss_params.items():
            if not (name == "q" and value == 0.7):  # GCE's usual q is left unsaid
                label += f" {'τ' if name == 'tau' else name}={_num(value)}"
        extra = [f"{k}={_num(ident.get(k))}" for k in varying]
        return label + (f", {', '.join(extra)}" if extra else "")

    def sort_key(self) -> tuple:
        ident = self.identity
        rank = LOSS_ORDER.index(ident.loss) if ident.loss in LOSS_ORDER else len(LOSS_ORDER)
        clip = ident.get("hparams.grad_clip_max_norm")
        params = json.dumps(ident.loss_params, sort_keys=True)
        return (rank, ident.loss, clip is not None, clip or 0, params, self.key)

    def reference_key(self, rho: float) -> tuple | None:
        """The key of the paper's tables for this row at ρ, if the row is the paper's setting."""
        ident = self.identity
        dataset, model, noise = self.table
        paper = PAPER_SETTINGS.get((dataset, model))
        params = ident.loss_params
        if (
            paper is None
            or noise != "symmetric"
            or ident.get("hparams.grad_clip_mode", "global") != "global"
            or params.get("q", 0.7) != 0.7
            or any(ident.get(k) != v for k, v in paper.items())
        ):
            return None
        clip = ident.get("hparams.grad_clip_max_norm")
        return (dataset, model, ident.loss, params.get("tau"), clip, rho)


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass
class Runs:
    """What the run directories hold: test accuracies and memorisation curves per (row, ρ), and
    one line for every run left out (unfinished, unreadable, a seed counted already)."""

    cells: dict[tuple[Row, float], list[float]] = field(default_factory=lambda: defaultdict(list))
    curves: dict[tuple[Row, float], list[list[float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    left_out: list[tuple[Path, str]] = field(default_factory=list)


def collect(dirs: list[Path]) -> Runs:
    """Read every ``metrics.json`` under ``dirs``; runs are grouped by their identity only."""
    runs = Runs()
    counted: dict[tuple[str, str], Path] = {}  # (identity, seeds) → the run counted for them
    for directory in dirs:
        for path in sorted(directory.rglob("metrics.json")):
            try:
                identity, test_acc, history = _read_run(path)
            except _LeftOut as why:
                runs.left_out.append((path.parent, str(why)))
                continue
            rho = identity.get(RHO)
            without_rho = {k: v for k, v in identity.settings.items() if k != RHO}
            row = Row(_canonical(without_rho), identity)
            replicate = (_canonical(identity.settings), _canonical(identity.seeds))
            if replicate in counted:
                seeds = ", ".join(f"{k}={v}" for k, v in identity.seeds.items())
                runs.left_out.append(
                    (path.parent, f"the same run ({seeds}) as {counted[replicate]}: counted once")
                )
                continue
            counted[replicate] = path.parent
            runs.cells[(row, rho)].append(100 * test_acc)
            curve = [r.get("train_noisy_memorised") for r in history if isinstance(r, dict)]
            if curve and None not in curve:
                runs.curves[(row, rho)].append(curve)
    return runs


class _LeftOut(Exception):
    """Why a run is not in the tables (one line)."""


def _read_run(path: Path) -> tuple[RunIdentity, float, list]:
    try:
        metrics = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise _LeftOut(f"unreadable metrics.json ({type(err).__name__})") from None
    if not isinstance(metrics, dict):
        raise _LeftOut(f"metrics.json holds a {type(metrics).__name__}, not a run's metrics")
    history = metrics.get("history") if isinstance(metrics.get("history"), list) else []
    status = metrics.get("status", "unknown")
    if status != "completed":
        epochs = (metrics.get("summary") or {}).get("epochs", "?")
        raise _LeftOut(f"{status} after {len(history)}/{epochs} epochs")
    try:
        identity = _identity(metrics)
    except ValueError as err:
        raise _LeftOut(str(err)) from None
    test_acc = (metrics.get("final") or {}).get("test_acc")
    number = isinstance(test_acc, int | float) and not isinstance(test_acc, bool)
    if not number or not math.isfinite(test_acc) or not 0 <= test_acc <= 1:
        raise _LeftOut("completed without a test accuracy in [0, 1] (dataset.test.use=false?)")
    return identity, float(test_acc), history


def _identity(metrics: dict[str, Any]) -> RunIdentity:
    """The run's recorded identity; for a run of an older phuber, which recorded none, the same
    derivation from the config and summary it did record."""
    if "identity" in metrics:
        try:
            return RunIdentity.from_dict(metrics["identity"])
        except ValueError as err:
            raise ValueError(f"broken run identity ({err})") from None
    config, summary = metrics.get("config"), metrics.get("summary")
    if not isinstance(config, dict) or not isinstance(summary, dict) or "loss" not in summary:
        raise ValueError("no run identity, and no config to derive it from: cannot be grouped")
    return RunIdentity.from_config(config, summary.get("seed"), str(summary["loss"]))


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


def load_references() -> dict[tuple, dict[str, tuple[float, float | None]]]:
    """``{(dataset, model, loss, tau, clip, rho): {source: (mean, std)}}`` from the packaged CSV."""
    table: dict[tuple, dict[str, tuple[float, float | None]]] = defaultdict(dict)
    text = (Path(__file__).parent / "data" / "paper_results.csv").read_text()
    for row in csv.DictReader(text.splitlines()):
        key = (
            row["dataset"],
            row["model"],
            row["loss"],
            float(row["tau"]) if row["tau"] else None,
            float(row["grad_clip_max_norm"]) if row["grad_clip_max_norm"] else None,
            float(row["corrupt_prob"]),
        )
        std = float(row["test_acc_std"]) if row["test_acc_std"] else None
        table[key][SOURCES[row["source"]]] = (float(row["test_acc_mean"]), std)
    return table


def aggregate(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (``None`` for a single run: there is no spread)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def build(dirs: list[Path]) -> dict[str, Any]:
    """Everything the outputs need: one table per data set, model and noise type (rows: one per
    identity without ρ, labelled by what tells them apart), and the runs left out."""
    runs = collect(dirs)
    references = load_references()
    tables: dict[tuple, dict[Row, dict[float, dict]]] = defaultdict(dict)
    for (row, rho), values in runs.cells.items():
        mean, std = aggregate(values)
        ref_key = row.reference_key(rho)
        ident = row.identity
        cell = {"mean": mean, "std": std, "n": len(values), "loss": ident.loss, "row": row.key}
        cell["loss_params"] = _canonical(ident.loss_params)
        cell["clip"] = ident.get("hparams.grad_clip_max_norm")
        cell["clip_mode"] = ident.get("hparams.grad_clip_mode", "global")
        cell["refs"] = references.get(ref_key, {}) if ref_key else {}
        tables[row.table].setdefault(row, {})[rho] = cell
    groups: dict[tuple, dict[str, dict[float, dict]]] = {}
    labels: dict[Row, str] = {}
    for table in sorted(tables, key=lambda t: tuple(map(str, t))):
        rows = sorted(tables[table], key=Row.sort_key)
        labels.update(_labels(rows))
        groups[table] = {labels[row]: tables[table][row] for row in rows}
    curves = {(row.table, labels[row], rho): c for (row, rho), c in runs.curves.items()}
    return {"groups": groups, "curves": curves, "unfinished": runs.left_out}


def _labels(rows: list[Row]) -> dict[Row, str]:
    """A label per row, unique within its table: the loss with its parameters and clipping, plus
    every other setting that differs between the rows."""
    for shown in (_LABELLED, (RHO,)):  # if two labels coincide, show every differing setting
        keys = sorted({k for row in rows for k in row.identity.settings})
        varying = [
            k
            for k in keys
            if not k.startswith(shown)
            and len({_canonical(row.identity.get(k)) for row in rows}) > 1
        ]
        labels = {row: row.label(varying) for row in rows}
        if len(set(labels.values())) == len(labels):
            break
    return labels


def _title(table: tuple[str, str, str]) -> str:
    dataset, model, noise = table
    return f"{dataset} / {model}, {noise} noise"


def _cell(c: dict | None) -> str:
    if c is None:
        return ""
    spread = "" if c["std"] is None else f" ± {c['std']:.1f}"
    return f"{c['mean']:.1f}{spread} (n={c['n']})"


def markdown(report: dict[str, Any]) -> str:
    lines: list[str] = []
    for table, rows in report["groups"].items():
        rhos = sorted({rho for row in rows.values() for rho in row})
        lines += [f"### {_title(table)}: test accuracy (%), mean ± std over seeds", ""]
        lines.append("| loss | " + " | ".join(f"ρ = {rho:.1f}" for rho in rhos) + " |")
        lines.append("|:--|" + "--:|" * len(rhos))
        has_refs = False
        for label, row in rows.items():
            lines.append(f"| {label} | " + " | ".join(_cell(row.get(rho)) for rho in rhos) + " |")
            has_refs |= any(c["refs"] for c in row.values())
        lines.append("")
        if has_refs:
            lines += ["Compared with the references (ours − theirs, in points):", ""]
            lines.append("| loss | source | " + " | ".join(f"ρ = {r:.1f}" for r in rhos) + " |")
            lines.append("|:--|:--|" + "--:|" * len(rhos))
            for label, row in rows.items():
                for source in SOURCES.values():
                    cells = []
                    for rho in rhos:
                        c = row.get(rho)
                        ref = c["refs"].get(source) if c else None
                        cells.append(f"{ref[0]:.1f} ({c['mean'] - ref[0]:+.1f})" if ref else "")
                    if any(cells):
                        lines.append(f"| {label} | {source} | " + " | ".join(cells) + " |")
            lines.append("")
    if report["unfinished"]:
        lines += ["### Runs not included", ""]
        lines += [f"- `{path}`: {why}" for path, why in report["unfinished"]] + [""]
    return "\n".join(lines)


def write_csv(report: dict[str, Any], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        head = ["dataset", "model", "noise_type", "label", "loss", "loss_params"]
        head += ["grad_clip_max_norm", "grad_clip_mode", "corrupt_prob"]
        head += ["n_runs", "test_acc_mean", "test_acc_std"]
        head += [f"{s}_{k}" for s in SOURCES.values() for k in ("mean", "diff")]
        writer.writerow([*head, "settings"])
        for table, rows in report["groups"].items():
            for label, row in rows.items():
                for rho, c in sorted(row.items()):
                    std = "" if c["std"] is None else round(c["std"], 3)
                    clip = "" if c["clip"] is None else c["clip"]
                    line = [*table, label, c["loss"], c["loss_params"], clip, c["clip_mode"], rho]
                    line += [c["n"], round(c["mean"], 3), std]
                    for source in SOURCES.values():
                        ref = c["refs"].get(source)
                        line += [ref[0], round(c["mean"] - ref[0], 3)] if ref else ["", ""]
                    writer.writerow([*line, c["row"]])


def plot(report: dict[str, Any], path: Path) -> None:
    """Test accuracy against ρ, one line per row, error bars = std over seeds."""
    groups = report["groups"]
    figure, axes = _panels(len(groups), 5.5, 4)
    for ax, (table, rows) in zip(axes, groups.items(), strict=True):
        for label, row in rows.items():
            rhos = sorted(row)
            ax.errorbar(
                rhos,
                [row[r]["mean"] for r in rhos],
                yerr=[row[r]["std"] or 0.0 for r in rhos],
                marker="o",
                capsize=3,
                label=label,
            )
        _style(ax, _title(table), "label corruption probability ρ", "test accuracy (%)")
    _save(figure, path)


def plot_memorisation(report: dict[str, Any], path: Path) -> bool:
    """Share of corrupted training examples predicted as their (wrong) given label, against the
    epoch: one panel per table and ρ, one line per row (mean over seeds)."""
    panels: dict[tuple, dict[str, list[list[float]]]] = defaultdict(dict)
    for (table, label, rho), runs in report["curves"].items():
        panels[(*table, rho)][label] = runs
    if not panels:
        return False
    figure, axes = _panels(len(panels), 4.5, 3.8)
    for ax, (key, lines) in zip(axes, sorted(panels.items()), strict=True):
        for label, runs in sorted(lines.items()):
            length = min(len(run) for run in runs)
            mean = [sum(run[e] for run in runs) / len(runs) for e in range(length)]
            ax.plot(range(1, length + 1), [100 * m for m in mean], marker=".", label=label)
        title = f"{_title(key[:3])}, ρ = {key[3]:.1f}"
        _style(ax, title, "epoch", "corrupted examples memorised (%)")
    _save(figure, path)
    return True


def _panels(n: int, width: float, height: float) -> tuple[Any, Any]:
    """A row of ``n`` panels, drawn with the Agg backend (headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return figure, axes[0]


def _style(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _save(figure: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=150)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phuber.report", description=__doc__)
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep or run directories")
    parser.add_argument("--out", type=Path, help="where to write report.* (default: first DIR)")
    args = parser.parse_args(argv)
    missing = [str(d) for d in args.dirs if not d.is_dir()]
    if missing:
        print(f"error: not a directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        print(f"error: --out {args.out} is a file; give a folder for report.*", file=sys.stderr)
        return 2
    report = build(args.dirs)
    for path, why in report["unfinished"]:
        print(f"left out {path}: {why}", file=sys.stderr)
    if not report["groups"]:
        found = len(report["unfinished"])
        print(
            f"error: no completed run under {', '.join(map(str, args.dirs))} "
            f"({found} left out; a run directory holds a metrics.json written by train.py)",
            file=sys.stderr,
        )
        return 2
    out = args.out or args.dirs[0]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"error: cannot create --out {out} ({err.strerror})", file=sys.stderr)
        return 2
    text = markdown(report)
    print(text)
    try:
        (out / "report.md").write_text(text)
        write_csv(report, out / "report.csv")
        plot(report, out / "report.png")
        memorisation = plot_memorisation(report, out / "memorisation.png")
    except OSError as err:
        print(f"error: cannot write the report into {out} ({err.strerror})", file=sys.stderr)
        return 2
    extra = ", memorisation.png" if memorisation else ""
    print(f"wrote {out / 'report.md'}, report.csv, report.png{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
