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

from phuber.config import is_num
from phuber.identity import RunIdentity

LOSS_LABELS = {
    "ce": "CE",
    "CrossEntropyLoss": "CE (PyTorch)",
    "linear": "Linear",
    "gce": "GCE",
    "phuber_ce": "PHuber-CE",
    "phuber_gce": "PHuber-GCE",
    "mae": "MAE",
    "sce": "SCE",
    "nce_rce": "NCE+RCE",
    "nce_mae": "NCE+MAE",
    "agce": "AGCE",
    "taylor_ce": "Taylor-CE",
    "focal": "Focal",
    "bootstrap": "Bootstrap",
    "forward": "Forward (true T)",
}
LOSS_ORDER = list(LOSS_LABELS)
PARAM_SYMBOLS = {"tau": "τ", "alpha": "α", "beta": "β", "gamma": "γ"}
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
_LABELLED = (
    "loss.",
    "hparams.grad_clip_max_norm",
    "hparams.grad_clip_mode",
    "hparams.logit_clip",
    RHO,
)


@dataclass(frozen=True)
class Row:
    """One row of a table: an identity without ρ (the column)."""

    key: str  # the identity's settings without ρ, as canonical JSON
    identity: RunIdentity = field(compare=False, hash=False)  # one run's (any of the row's)

    @property
    def table(self) -> tuple[str, str, str]:
        """Data set, model and noise type: one table each."""
        ident = self.identity
        human = ident.get("dataset.train.human_labels")
        noise = f"human ({human})" if human else ident.get("dataset.train.noise_type")
        return (ident.get("dataset.name"), ident.model, noise)

    def label(self, varying: list[str]) -> str:
        ident = self.identity
        label = LOSS_LABELS.get(ident.loss, ident.loss)
        clip = ident.get("hparams.grad_clip_max_norm")
        if clip is not None:
            mode = ident.get("hparams.grad_clip_mode", "global")
            detail = [] if clip == 0.1 else [_num(clip)]
            detail += [] if mode == "global" else [mode]
            label += " + clipping" + (f" ({', '.join(detail)})" if detail else "")
        logit_clip = ident.get("hparams.logit_clip")
        if logit_clip is not None:
            label += f" + LogitClip (τ={_num(logit_clip)})"
        for name, value in ident.loss_params.items():
            if not (name == "q" and value == 0.7 and ident.loss in ("gce", "phuber_gce")):
                label += f" {PARAM_SYMBOLS.get(name, name)}={_num(value)}"  # GCE's usual q unsaid
        extra = [f"{k}={_num(ident.get(k))}" for k in varying]
        return label + (f", {', '.join(extra)}" if extra else "")

    def sort_key(self) -> tuple:
        ident = self.identity
        rank = LOSS_ORDER.index(ident.loss) if ident.loss in LOSS_ORDER else len(LOSS_ORDER)
        clip = ident.get("hparams.grad_clip_max_norm")
        logit_clip = ident.get("hparams.logit_clip")
        params = json.dumps(ident.loss_params, sort_keys=True)
        clips = (clip is not None, clip or 0, logit_clip is not None, logit_clip or 0)
        return (rank, ident.loss, *clips, params, self.key)

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
            or ident.get("hparams.logit_clip") is not None
            or params.get("q", 0.7) != 0.7
            or any(ident.get(k) != v for k, v in paper.items())
        ):
            return None
        clip = ident.get("hparams.grad_clip_max_norm")
        return (dataset, model, ident.loss, params.get("tau"), clip, rho)


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


Curve = list[tuple[int, float]]  # (epoch, value) pairs of one run


def _lists() -> defaultdict:
    return defaultdict(list)


@dataclass
class Runs:
    """What the run directories hold, per (row, ρ): final test accuracies, best-epoch test
    accuracies (of the runs that scored the test set during training), memorisation and test
    accuracy curves; and one line for every run left out (unfinished, unreadable, a seed counted
    already)."""

    cells: dict[tuple[Row, float], list[float]] = field(default_factory=_lists)
    best: dict[tuple[Row, float], list[float]] = field(default_factory=_lists)
    curves: dict[tuple[Row, float], list[Curve]] = field(default_factory=_lists)
    test_curves: dict[tuple[Row, float], list[Curve]] = field(default_factory=_lists)
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
            memorised = _curve(history, "train_noisy_memorised")
            if memorised:
                runs.curves[(row, rho)].append(memorised)
            test = _curve(history, "test_acc")
            if test:
                runs.test_curves[(row, rho)].append(test)
                runs.best[(row, rho)].append(100 * max(test_acc, *(v for _, v in test)))
    return runs


def _curve(history: list, key: str) -> Curve:
    """``(epoch, value)`` of the epochs whose row has a number under ``key``."""
    rows = [r for r in history if isinstance(r, dict)]
    return [
        (r["epoch"], float(r[key]))
        for r in rows
        if isinstance(r.get("epoch"), int) and is_num(r.get(key))
    ]


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
    if not is_num(test_acc) or not 0 <= test_acc <= 1:
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
        best = runs.best.get((row, rho), [])
        if len(best) == len(values):  # every run scored the test set during training
            cell["best_mean"], cell["best_std"] = aggregate(best)
        tables[row.table].setdefault(row, {})[rho] = cell
    groups: dict[tuple, dict[str, dict[float, dict]]] = {}
    labels: dict[Row, str] = {}
    for table in sorted(tables, key=lambda t: tuple(map(str, t))):
        rows = sorted(tables[table], key=Row.sort_key)
        labels.update(_labels(rows))
        groups[table] = {labels[row]: tables[table][row] for row in rows}
    curves = {
        name: {(row.table, labels[row], rho): c for (row, rho), c in found.items()}
        for name, found in (("memorised", runs.curves), ("test_acc", runs.test_curves))
    }
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
    best = f", best {c['best_mean']:.1f}" if "best_mean" in c else ""
    return f"{c['mean']:.1f}{spread}{best} (n={c['n']})"


def markdown(report: dict[str, Any]) -> str:
    lines: list[str] = []
    for table, rows in report["groups"].items():
        rhos = sorted({rho for row in rows.values() for rho in row})
        lines += [f"### {_title(table)}: test accuracy (%), mean ± std over seeds", ""]
        if any("best_mean" in c for row in rows.values() for c in row.values()):
            lines += [
                "At the end of training; *best*: the mean over seeds of each run's best test "
                "accuracy over the epochs it was scored (the early-stopping oracle).",
                "",
            ]
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
        head += [
            "n_runs",
            "test_acc_mean",
            "test_acc_std",
            "best_test_acc_mean",
            "best_test_acc_std",
        ]
        head += [f"{s}_{k}" for s in SOURCES.values() for k in ("mean", "diff")]
        writer.writerow([*head, "settings"])
        for table, rows in report["groups"].items():
            for label, row in rows.items():
                for rho, c in sorted(row.items()):
                    std = "" if c["std"] is None else round(c["std"], 3)
                    clip = "" if c["clip"] is None else c["clip"]
                    line = [*table, label, c["loss"], c["loss_params"], clip, c["clip_mode"], rho]
                    line += [c["n"], round(c["mean"], 3), std]
                    best_std = c.get("best_std")
                    line += [round(c["best_mean"], 3) if "best_mean" in c else ""]
                    line += ["" if best_std is None else round(best_std, 3)]
                    for source in SOURCES.values():
                        ref = c["refs"].get(source)
                        line += [ref[0], round(c["mean"] - ref[0], 3)] if ref else ["", ""]
                    writer.writerow([*line, c["row"]])


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
            _style(ax, f"{_title(table)}, ρ = {rhos[0]:.1f}", "test accuracy (%)", "", legend=False)
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
        _style(ax, _title(table), "label corruption probability ρ", "test accuracy (%)")
    _save(figure, path)


def _looks(n: int) -> list[tuple[Any, str]]:
    """``n`` distinguishable (colour, marker) pairs: up to 20 colours, markers cycling."""
    import matplotlib

    colors = matplotlib.colormaps["tab20" if n > 10 else "tab10"].colors
    markers = "osD^vP*Xh<>p"
    return [(colors[i % len(colors)], markers[i % len(markers)]) for i in range(n)]


def plot_memorisation(report: dict[str, Any], path: Path) -> bool:
    """Against the epoch, one column per table and ρ, one line per row (mean over seeds): the
    share of corrupted training examples predicted as their (wrong) given label (top), and test
    accuracy where it was scored during training (bottom). One legend: a row has one look in
    every panel."""
    kinds = {
        "memorised": "corrupted examples memorised (%)",
        "test_acc": "test accuracy (%)",
    }
    panels: dict[str, dict[tuple, dict[str, list[Curve]]]] = {k: defaultdict(dict) for k in kinds}
    for kind in kinds:
        for (table, label, rho), runs in report["curves"][kind].items():
            panels[kind][(*table, rho)][label] = runs
    columns = sorted(set(panels["memorised"]) | set(panels["test_acc"]), key=str)
    rows = [kind for kind in kinds if panels[kind]]
    if not rows:
        return False
    labels = list(dict.fromkeys(label for g in report["groups"].values() for label in g))
    looks = dict(zip(labels, _looks(len(labels)), strict=True))
    figure, axes = _panels(len(columns), 4, 3.6, len(rows))
    drawn: dict[str, Any] = {}
    for r, kind in enumerate(rows):
        for c, key in enumerate(columns):
            ax = axes[r * len(columns) + c]
            for label, runs in panels[kind].get(key, {}).items():
                epochs, mean = _mean_curve(runs)
                color, marker = looks[label]
                x = [e + 1 for e in epochs]
                (drawn[label],) = ax.plot(x, mean, marker=marker, markersize=3, color=color)
            dataset, model, noise, rho = key
            title = f"{dataset} / {model}\n{noise} noise, ρ = {rho:.1f}"
            _style(ax, title, "epoch", kinds[kind], legend=False)
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


def _style(ax: Any, title: str, xlabel: str, ylabel: str, legend: bool = True) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend:  # beside the panel, where it hides no line
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _save(figure: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=150, bbox_inches="tight")  # with a legend beside the panels
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
