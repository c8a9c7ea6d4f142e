"""The options of every config group and the keys each sets, with their declared domains: what
docs/options.md's table of values is generated from (``python -m phuber.app.options --write``),
and what the property tests enumerate (tests/test_domains.py).

A config group's option fills the node of the same path (``loss=gce`` fills ``loss``); a recipe
(``conf/hparams/<model>``) is chosen by its model, as ``conf/train.yaml``'s defaults say.
"""

import argparse
import sys
from functools import cache
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from phuber.training.config import CONF

GROUPS = ("loss", "dataset", "model", "hparams", "hparams/optimizer")
DEFAULT_DATASET, DEFAULT_LOSS = "mnist_5k", "phuber_ce"
# What an option needs besides itself to make a config that builds: a model for its images.
_FIT = {"cifar": ["model=resnet18"]}
# The keys conf/misc/train_misc.yaml gives every run.
RUN_KEYS = ("seed", "eval_every", "eval_batch_size", "mixed_precision", "tensorboard", "save")
BEGIN, END = "<!-- values: generated -->", "<!-- values: end -->"


def options() -> list[tuple[str, str]]:
    """Every (group, option) of ``GROUPS``, as ``conf/`` holds them."""
    return [
        (group, path.stem) for group in GROUPS for path in sorted((CONF / group).glob("*.yaml"))
    ]


@cache
def compose_option(group: str, option: str) -> DictConfig:
    """The training config with ``option`` of ``group`` chosen (and what it needs to build)."""
    from hydra import compose, initialize_config_dir

    fit = next((extra for prefix, extra in _FIT.items() if option.startswith(prefix)), [])
    chosen = f"model={option}" if group == "hparams" else f"{group}={option}"
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("train", [chosen, *fit, "device=cpu", "seed=0"])


def option_keys(group: str, option: str) -> list[str]:
    """The keys under the option's node, as composed (its recipe's too), interpolations aside
    (their source key is listed). The split settings every data set shares (conf/splits) are
    listed with the default data set; another data set's are those it sets otherwise."""
    cfg = compose_option(group, option)
    node = group.replace("/", ".")
    keys: list[str] = []

    def walk(tree: dict, prefix: str) -> None:
        for name, value in tree.items():
            key = f"{prefix}.{name}"
            if isinstance(value, dict):
                walk(value, key)
            elif name != "_target_" and not (isinstance(value, str) and "${" in value):
                keys.append(key)

    walk(OmegaConf.to_container(OmegaConf.select(cfg, node), resolve=False), node)  # type: ignore[arg-type]
    if group == "dataset" and option != DEFAULT_DATASET:
        default, absent = compose_option(group, DEFAULT_DATASET), object()
        keys = [
            k
            for k in keys
            if OmegaConf.select(cfg, k) != OmegaConf.select(default, k, default=absent)
        ]
    return keys


def cases() -> list[tuple[str, str, str]]:
    """Every (group, option, key) to judge: each option's keys, and the run's own keys with
    the default loss."""
    found = [(g, o, k) for g, o in options() for k in option_keys(g, o)]
    return found + [("loss", DEFAULT_LOSS, key) for key in RUN_KEYS]


def table() -> str:
    """docs/options.md's table of values: every key a shipped option sets, what it accepts (its
    declared domain) and its value in each option that sets it (one row per key and domain)."""
    from phuber.training.domains import domain_of

    rows: dict[tuple[str, str], dict[str, list[str]]] = {}
    for group, option, key in cases():
        cfg = compose_option(group, option)
        domain = domain_of(cfg, key)
        allowed = domain.allowed() if domain is not None else "(no declared domain)"
        value = _plain(OmegaConf.select(cfg, key))
        named = option if group != "loss" or key.startswith("loss.") else "every run"
        rows.setdefault((key, allowed), {}).setdefault(value, []).append(named)
    lines = [BEGIN, "", "| key | accepts | shipped values (where) |", "|---|---|---|"]
    for (key, allowed), values in sorted(rows.items()):
        shown = ", ".join(f"`{v}` ({', '.join(dict.fromkeys(w))})" for v, w in values.items())
        lines.append(f"| `{key}` | {allowed.replace('|', '/')} | {shown} |")
    return "\n".join([*lines, "", END])


def _plain(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)


def _in_page(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phuber.app.options", description=__doc__)
    parser.add_argument("page", type=Path, nargs="?", default=CONF.parent / "docs/options.md")
    parser.add_argument("--write", action="store_true", help="rewrite the page's table")
    args = parser.parse_args(argv)
    text = args.page.read_text()
    fresh = table()
    if _in_page(text) == fresh:
        return 0
    if not args.write:
        print(f"{args.page}: its table of values is not the declared domains'; run with --write")
        return 1
    args.page.write_text(text.replace(_in_page(text), fresh))
    return 0


if __name__ == "__main__":
    sys.exit(main())
