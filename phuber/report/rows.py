"""The rows of the report's tables: one per identity without ρ (ρ is the column), grouped into one
table per data set, model and noise type, each labelled by its loss, parameters and whatever
else tells it apart from the other rows of its table."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from phuber.core.identity import RunIdentity, key
from phuber.report.read import RHO

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
    "ogc_ce": "OGC-CE",
    "ogc_fl": "OGC-FL",
    "ogc_gce": "OGC-GCE",
    "nce_nnce": "ANL-CE (NCE+NNCE)",
    "nfl_nnfl": "ANL-FL (NFL+NNFL)",
    "js": "JS",
    "ece_mae": "ε-softmax CE+MAE",
    "efl_mae": "ε-softmax FL+MAE",
    "label_smoothing": "LS",
    "nls": "NLS",
}
LOSS_ORDER = list(LOSS_LABELS)
PARAM_SYMBOLS = {
    "tau": "τ",
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "epsilon": "ε",
    "pi1": "π₁",
    "smooth_rate": "r",
    "time_frame_s": "s",
    "queue_size_q": "queue",
}
# Parameters left out of a label at their usual value: GCE's q, focal's detached weight, the
# clamps of ANL and ε-softmax and the search settings of OGC.
_UNSAID = {
    ("gce", "q"): 0.7,
    ("phuber_gce", "q"): 0.7,
    ("ogc_gce", "q"): 0.7,
    ("focal", "detach_weight"): True,
    ("label_smoothing", "warmup_epochs"): 0,
    ("nce_nnce", "min_prob"): 1e-7,
    ("nfl_nnfl", "min_prob"): 1e-7,
    ("ece_mae", "eps"): 1e-8,
    ("efl_mae", "eps"): 1e-8,
    **{(f"ogc_{b}", "binary_search_tol"): 1e-7 for b in ("ce", "fl", "gce")},
    **{(f"ogc_{b}", "binary_search_max_iter"): 10 for b in ("ce", "fl", "gce")},
}
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
_ABSENT = "<not set>"

Table = tuple[str, str, str]  # data set, model, noise type


@dataclass(frozen=True)
class Row:
    """One row of a table: an identity without ρ. Rows are equal when their settings are
    (canonically: ``1 == 1.0``); ``identity`` is any one of the row's runs'."""

    key: str  # the identity's settings without ρ, canonical (phuber.core.identity.key)
    identity: RunIdentity = field(compare=False, hash=False)

    @classmethod
    def of(cls, identity: RunIdentity) -> "Row":
        return cls(key({k: v for k, v in identity.settings.items() if k != RHO}), identity)

    @property
    def table(self) -> Table:
        """Data set, model and noise type: one table each."""
        ident = self.identity
        human = ident.get("dataset.train.human_labels")
        noise = f"human ({human})" if human else ident.get("dataset.train.noise_type", "symmetric")
        return (ident.get("dataset.name"), ident.model, noise)

    def label(self, varying: list[str], raw: bool = False, usual: dict | None = None) -> str:
        """The loss with its parameters and clipping, then ``key=value`` for each ``varying``
        setting whose value is not the table's ``usual`` one for it (``raw``: values as
        canonical JSON, which no two distinct values share)."""
        ident = self.identity
        label, params = _loss_label(ident)
        clip = ident.get("hparams.grad_clip_max_norm")
        if clip is not None:
            mode = ident.get("hparams.grad_clip_mode", "global")
            detail = [] if clip == 0.1 else [_num(clip)]
            detail += [] if mode == "global" else [str(mode)]
            label += " + clipping" + (f" ({', '.join(detail)})" if detail else "")
        logit_clip = ident.get("hparams.logit_clip")
        if logit_clip is not None:
            label += f" + LogitClip (τ={_num(logit_clip)})"
        for name, value in params.items():
            if key(value) != key(_UNSAID.get((ident.loss, name), "<shown>")):
                label += f" {PARAM_SYMBOLS.get(name, name)}={_num(value)}"
        usual = usual or {}
        shown = [(k, ident.settings.get(k, _ABSENT)) for k in varying]
        shown = [(k, v) for k, v in shown if k not in usual or key(v) != usual[k]]
        extra = [f"{k}={key(v) if raw and v != _ABSENT else _num(v)}" for k, v in shown]
        return label + (f", {', '.join(extra)}" if extra else "")

    def sort_key(self) -> tuple:
        ident = self.identity
        rank = LOSS_ORDER.index(ident.loss) if ident.loss in LOSS_ORDER else len(LOSS_ORDER)
        clip = ident.get("hparams.grad_clip_max_norm")
        logit_clip = ident.get("hparams.logit_clip")
        clips = (clip is not None, clip or 0, logit_clip is not None, logit_clip or 0)
        return (rank, ident.loss, *clips, key(ident.loss_params), self.key)

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
            or key(params.get("q", 0.7)) != key(0.7)
            or any(key(ident.get(k)) != key(v) for k, v in paper.items())
        ):
            return None
        tau, clip = params.get("tau"), ident.get("hparams.grad_clip_max_norm")
        if not all(v is None or _is_number(v) for v in (tau, clip)):
            return None
        return (dataset, model, ident.loss, _float(tau), _float(clip), float(rho))


def labels(rows: list[Row]) -> dict[Row, str]:
    """A label per row, unique within its table: the loss with its parameters and clipping, plus
    every other setting that differs between the rows where it is not the value most rows have
    (ANL's weight decay 0 among runs with 1e-3 shows on ANL's rows only); if labels coincide,
    every differing setting on every row; where two still do (values that print alike, such as
    1 and '1'), every differing setting as canonical JSON."""
    keys = sorted({k for row in rows for k in row.identity.settings} - {RHO})

    def differing(exclude: tuple[str, ...]) -> list[str]:
        return [
            k
            for k in keys
            if not k.startswith(exclude)
            and len({key(row.identity.settings.get(k, _ABSENT)) for row in rows}) > 1
        ]

    def modes(varying: list[str]) -> dict[str, str]:
        """The value more rows have than any other, per setting (none where two tie)."""
        found = {}
        for k in varying:
            counts = Counter(key(row.identity.settings.get(k, _ABSENT)) for row in rows)
            (first, n), *rest = counts.most_common(2)
            if not rest or rest[0][1] < n:
                found[k] = first
        return found

    named: dict[Row, str] = {}
    labelled = differing(_LABELLED)
    passes = (
        (labelled, False, modes(labelled)),
        (labelled, False, None),
        (differing(()), False, None),
        (differing(()), True, None),
    )
    for varying, raw, usual in passes:
        named = {row: row.label(varying, raw, usual) for row in rows}
        if len(set(named.values())) == len(named):
            return named
    seen: dict[str, int] = defaultdict(int)  # labels that still coincide: numbered, never merged
    for row, label in named.items():
        seen[label] += 1
        named[row] = label if seen[label] == 1 else f"{label} (#{seen[label]})"
    return named


def rho_text(rho: float) -> str:
    """ρ for a heading: one decimal where that is exact (0.0, 0.4), else as it is (0.25)."""
    return f"{rho:.1f}" if round(rho, 1) == rho else f"{rho:g}"


def _loss_label(ident: RunIdentity) -> tuple[str, dict[str, Any]]:
    """The loss's name for a label, and the parameters left to show after it. The forward
    correction says where its T comes from: the noise model (true T), the config (given T) or
    an estimate from a first model (its anchor percentile shown where it is not 97)."""
    params = dict(ident.loss_params)
    if ident.loss != "forward":
        return LOSS_LABELS.get(ident.loss, ident.loss), params
    estimated = params.pop("estimate_from", None) is not None
    percentile = params.pop("anchor_percentile", None)
    given = params.pop("transition", None) is not None
    if estimated:
        shown = "" if key(percentile) == key(97) else f", anchors at p{_num(percentile)}"
        return f"Forward (estimated T{shown})", params
    return ("Forward (given T)" if given else "Forward (true T)"), params


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _float(x: Any) -> float | None:
    return None if x is None else float(x)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)
