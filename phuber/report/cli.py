"""``python -m phuber.report DIR [...] [--out OUT]``: the report's command line."""

import argparse
import sys
from pathlib import Path

from phuber.core.errors import StorageError
from phuber.core.files import atomic_write
from phuber.report import __doc__ as DOC
from phuber.report.aggregate import build
from phuber.report.plots import plot, plot_memorisation
from phuber.report.tables import markdown, write_csv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phuber.report", description=DOC)
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep or run directories")
    parser.add_argument("--out", type=Path, help="where to write report.* (default: first DIR)")
    args = parser.parse_args(argv)
    missing = [str(d) for d in args.dirs if not d.is_dir()]
    if missing:
        return _error(f"not a directory: {', '.join(missing)}")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        return _error(f"--out {args.out} is a file; give a folder for report.*")
    report = build(args.dirs)
    for path, why in report["unfinished"]:
        print(f"left out {path}: {why}", file=sys.stderr)
    for path, why in report["points_left_out"]:
        print(f"left out a point of {path}: {why}", file=sys.stderr)
    left_out = len(report["unfinished"])
    tabulated = report["accounted"] - left_out
    if report["accounted"] != report["files"]:
        print(
            f"error: the report's accounting does not add up: {report['files']} metrics.json "
            f"found, {tabulated} in the tables and {left_out} left out. This is a defect of "
            f"phuber: please report it with the folders you gave",
            file=sys.stderr,
        )
        return 3
    if not report["groups"]:
        return _error(
            f"no completed run under {', '.join(map(str, args.dirs))} ({left_out} left out; a "
            f"run directory holds a metrics.json written by train.py)"
        )
    out = args.out or args.dirs[0]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return _error(f"cannot create --out {out} ({err.strerror})")
    text = markdown(report)
    print(text)
    try:
        atomic_write(out / "report.md", lambda f: f.write(text.encode()))
        write_csv(report, out / "report.csv")
        plot(report, out / "report.png")
        memorisation = plot_memorisation(report, out / "memorisation.png")
    except StorageError as err:
        return _error(f"cannot write the report into {out}: {err}")
    extra = ", memorisation.png" if memorisation else ""
    print(f"wrote {out / 'report.md'}, report.csv, report.png{extra}")
    print(
        f"{report['files']} metrics.json found = {tabulated} in the tables + {left_out} left out"
        + (
            f" ({len(report['points_left_out'])} points of curves left out)"
            if report["points_left_out"]
            else ""
        )
    )
    return 0


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
