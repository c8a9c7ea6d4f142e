"""From run directories to the paper's tables: ``python -m phuber.report DIR [...] [--out OUT]``.

Reads every ``metrics.json`` under the given sweep or run directories, groups completed runs by data
set, model, loss (with τ, q and clipping) and ρ, and aggregates test accuracy over seeds (mean and
sample standard deviation). Prints one Markdown table per data set/model (rows: losses, columns: ρ),
and writes ``report.md``, ``report.csv``, ``report.png`` and, for noisy runs, ``memorisation.png``
(memorised noise against epoch) into OUT (default: the first DIR). Where the paper or the earlier
reproduction report the same setting, their numbers stand beside ours. Runs still in progress or
failed are listed, not dropped.
"""

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOSS_ORDER = ["ce", "pytorch_ce", "linear", "gce", "phuber_ce", "phuber_gce"]
LOSS_LABELS = {
    "ce": "CE",
    "pytorch_ce": "CE (PyTorch)",
    "linear": "Linear",
    "gce": "GCE",
    "phuber_ce": "PHuber-CE",
    "phuber_gce": "PHuber-GCE",
}
SOURCES = {"menon2020_paper": "paper", "mizrahi2021_rescience": "reproduction"}


@dataclass(frozen=True)
class Setting:
    """What identifies a row of the paper's tables (``rho`` is the column)."""

    dataset: str
    model: str
    loss: str
    tau: float | None
    q: float | None
    clip: float | None

    def sort_key(self) -> tuple:
        """Paper order: by data set, model, loss, then unclipped first, then τ and q."""
        rank = LOSS_ORDER.index(self.loss) if self.loss in LOSS_ORDER else len(LOSS_ORDER)
        extra = (self.clip is not None, self.clip or 0, self.tau or 0, self.q or 0)
        return (self.dataset, self.model, rank, self.loss, *extra)

    @property
    def label(self) -> str:
        label = LOSS_LABELS.get(self.loss, self.loss)
        if self.clip is not None:
            label += " + clipping" + ("" if self.clip == 0.1 else f" ({_num(self.clip)})")
        if self.q is not None and self.q != 0.7:
            label += f" q={_num(self.q)}"
        if self.tau is not None:
            label += f" τ={_num(self.tau)}"
        return label


def _num(x: float) -> str:
    return f"{x:g}"


def collect(dirs: list[Path]) -> tuple[dict, dict, list[tuple[Path, str]]]:
    """``{(setting, rho): [test accuracies in %]}``, ``{(setting, rho): [memorisation curves]}``
    and the runs that did not complete."""
    cells: dict[tuple[Setting, float], list[float]] = defaultdict(list)
    curves: dict[tuple[Setting, float], list[list[float]]] = defaultdict(list)
    unfinished: list[tuple[Path, str]] = []
    for directory in dirs:
        for path in sorted(directory.rglob("metrics.json")):
            try:
                metrics = json.loads(path.read_text())
                s = metrics["summary"]
            except (OSError, ValueError, KeyError) as err:
                unfinished.append((path.parent, f"unreadable metrics.json ({type(err).__name__})"))
                continue
            test_acc = metrics.get("final", {}).get("test_acc")
            if metrics.get("status") != "completed" or test_acc is None:
                epochs = len(metrics.get("history", []))
                status = metrics.get("status", "unknown")
                unfinished.append(
                    (path.parent, f"{status} after {epochs}/{s.get('epochs')} epochs")
                )
                continue
            tau = s.get("tau") if s["loss"].startswith("phuber") else None
            q = s.get("q") if s["loss"] in ("gce", "phuber_gce") else None
            setting = Setting(
                s["dataset"], s["model"], s["loss"], tau, q, s.get("grad_clip_max_norm")
            )
            key = (setting, float(s["corrupt_prob"]))
            cells[key].append(100 * test_acc)
            curve = [row.get("train_noisy_memorised") for row in metrics.get("history", [])]
            if curve and None not in curve:
                curves[key].append(curve)
    return cells, curves, unfinished


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


def aggregate(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def build(dirs: list[Path]) -> dict[str, Any]:
    """Everything the outputs need: rows per data set/model, and the unfinished runs."""
    cells, curves, unfinished = collect(dirs)
    references = load_references()
    groups: dict[tuple[str, str], dict[Setting, dict[float, dict]]] = defaultdict(dict)
    for (setting, rho), values in sorted(
        cells.items(), key=lambda c: (c[0][0].sort_key(), c[0][1])
    ):
        mean, std = aggregate(values)
        ref_key = (setting.dataset, setting.model, setting.loss, setting.tau, setting.clip, rho)
        row = groups[(setting.dataset, setting.model)].setdefault(setting, {})
        row[rho] = {"mean": mean, "std": std, "n": len(values), "refs": references.get(ref_key, {})}
    return {"groups": groups, "curves": curves, "unfinished": unfinished}


def markdown(report: dict[str, Any]) -> str:
    lines: list[str] = []
    for (dataset, model), rows in report["groups"].items():
        rhos = sorted({rho for row in rows.values() for rho in row})
        lines += [f"### {dataset} / {model}: test accuracy (%), mean ± std over seeds", ""]
        lines.append("| loss | " + " | ".join(f"ρ = {rho:.1f}" for rho in rhos) + " |")
        lines.append("|:--|" + "--:|" * len(rhos))
        has_refs = False
        for setting, row in rows.items():
            cells = []
            for rho in rhos:
                c = row.get(rho)
                cells.append(f"{c['mean']:.1f} ± {c['std']:.1f} (n={c['n']})" if c else "")
                has_refs |= bool(c and c["refs"])
            lines.append(f"| {setting.label} | " + " | ".join(cells) + " |")
        lines.append("")
        if has_refs:
            lines += ["Compared with the references (ours − theirs, in points):", ""]
            lines.append("| loss | source | " + " | ".join(f"ρ = {r:.1f}" for r in rhos) + " |")
            lines.append("|:--|:--|" + "--:|" * len(rhos))
            for setting, row in rows.items():
                for source in SOURCES.values():
                    cells = []
                    for rho in rhos:
                        c = row.get(rho)
                        ref = c["refs"].get(source) if c else None
                        cells.append(f"{ref[0]:.1f} ({c['mean'] - ref[0]:+.1f})" if ref else "")
                    if any(cells):
                        lines.append(f"| {setting.label} | {source} | " + " | ".join(cells) + " |")
            lines.append("")
    if report["unfinished"]:
        lines += ["### Runs not included (in progress or failed)", ""]
        lines += [f"- `{path}`: {why}" for path, why in report["unfinished"]] + [""]
    return "\n".join(lines)


def write_csv(report: dict[str, Any], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        head = ["dataset", "model", "loss", "tau", "q", "grad_clip_max_norm", "corrupt_prob"]
        head += ["n_runs", "test_acc_mean", "test_acc_std"]
        head += [f"{s}_{k}" for s in SOURCES.values() for k in ("mean", "diff")]
        writer.writerow(head)
        for rows in report["groups"].values():
            for s, row in rows.items():
                for rho, c in sorted(row.items()):
                    line = [s.dataset, s.model, s.loss, s.tau, s.q, s.clip, rho, c["n"]]
                    line += [round(c["mean"], 3), round(c["std"], 3)]
                    for source in SOURCES.values():
                        ref = c["refs"].get(source)
                        line += [ref[0], round(c["mean"] - ref[0], 3)] if ref else ["", ""]
                    writer.writerow(["" if v is None else v for v in line])


def plot(report: dict[str, Any], path: Path) -> None:
    """Test accuracy against ρ, one line per loss, error bars = std over seeds."""
    groups = report["groups"]
    figure, axes = _panels(len(groups), 5.5, 4)
    for ax, ((dataset, model), rows) in zip(axes, groups.items(), strict=True):
        for setting, row in rows.items():
            rhos = sorted(row)
            ax.errorbar(
                rhos,
                [row[r]["mean"] for r in rhos],
                yerr=[row[r]["std"] for r in rhos],
                marker="o",
                capsize=3,
                label=setting.label,
            )
        _style(ax, f"{dataset} / {model}", "label corruption probability ρ", "test accuracy (%)")
    _save(figure, path)


def plot_memorisation(report: dict[str, Any], path: Path) -> bool:
    """Share of corrupted training examples predicted as their (wrong) given label, against the
    epoch: one panel per data set/model and ρ, one line per loss (mean over seeds)."""
    panels: dict[tuple[str, str, float], dict[Setting, list[list[float]]]] = defaultdict(dict)
    for (setting, rho), runs in sorted(report["curves"].items(), key=lambda c: c[0][0].sort_key()):
        panels[(setting.dataset, setting.model, rho)][setting] = runs
    if not panels:
        return False
    figure, axes = _panels(len(panels), 4.5, 3.8)
    for ax, ((dataset, model, rho), lines) in zip(axes, sorted(panels.items()), strict=True):
        for setting, runs in lines.items():
            length = min(len(run) for run in runs)
            mean = [sum(run[e] for run in runs) / len(runs) for e in range(length)]
            ax.plot(range(1, length + 1), [100 * m for m in mean], marker=".", label=setting.label)
        title = f"{dataset} / {model}, ρ = {rho:.1f}"
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
    report = build(args.dirs)
    if not report["groups"]:
        found = len(report["unfinished"])
        print(
            f"error: no completed run under {', '.join(map(str, args.dirs))} "
            f"({found} unfinished; a run directory holds a metrics.json written by train.py)",
            file=sys.stderr,
        )
        print(markdown(report), file=sys.stderr)
        return 2
    out = args.out or args.dirs[0]
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    print(text)
    (out / "report.md").write_text(text)
    write_csv(report, out / "report.csv")
    plot(report, out / "report.png")
    extra = ", memorisation.png" if plot_memorisation(report, out / "memorisation.png") else ""
    print(f"wrote {out / 'report.md'}, report.csv, report.png{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
