"""From run directories to the paper's tables: ``python -m phuber.report DIR [...] [--out OUT]``.

Reads every ``metrics.json`` under the given sweep or run directories and groups completed runs by
their identity (every setting that changes a result except the seeds): test accuracy is averaged
only over runs of one identity (mean and sample standard deviation; a seed counted once). Prints
one Markdown table per data set, model and noise type (rows: identities without ρ, labelled by
what tells them apart; columns: ρ), and writes ``report.md``, ``report.csv``, ``report.png`` and,
for noisy runs, ``memorisation.png`` into OUT (default: the first DIR). Where a row is the paper's
setting, the paper's and the earlier reproduction's numbers stand beside ours. Every run left out
(unfinished, unreadable, a duplicate) is named with the reason.

The package, one job a module: ``read`` (one metrics.json, every number checked), ``rows``
(grouping and labels), ``aggregate`` (cells, references), ``tables`` (Markdown, CSV), ``plots``
(figures) and ``cli``.
"""

from phuber.report.aggregate import aggregate, build, collect
from phuber.report.cli import main
from phuber.report.tables import markdown, write_csv

__all__ = ["aggregate", "build", "collect", "main", "markdown", "write_csv"]
