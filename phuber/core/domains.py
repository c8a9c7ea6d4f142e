"""Parameter domains, declared once where a parameter is consumed.

A domain says what one parameter accepts (``check``), in words (``allowed``), and which values
are worth trying it with (``edges``: its bounds and just beyond them, and the extremes every
number meets). Classes declare theirs with ``phuber.core.declared``; the CLI's messages, the
options table of ``docs/options.md`` and the property tests all read the same declarations, so a
rule is written once.

No heavy imports: the harness's own keys (``phuber.training.config``) are declared here too.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# float32's range: a parameter that multiplies float32 tensors must be one (not inf, and not
# flushed towards 0).
F32_MAX = 3.4028234663852886e38
F32_TINY = 1.1754943508222875e-38  # the smallest normal float32
_F32_RANGE = "within float32's range (1.2e-38 to 3.4e38)"


def in_float32(value: float) -> bool:
    """Whether ``value`` is 0 or a normal float32 number (its magnitude in [F32_TINY, F32_MAX])."""
    return value == 0 or F32_TINY <= abs(value) <= F32_MAX


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    """A finite real number (not a bool, NaN or ±inf)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _num(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


class Domain:
    """What one parameter accepts. ``check(value)`` returns the value as the consumer uses it,
    or raises ``ValueError`` whose text completes "must be …"; ``allowed`` is that text for a
    valid-value table; ``edges`` are the values worth trying a consumer with (its bounds and
    just beyond them, and the extremes every number meets)."""

    nullable: bool = False
    null_means: str = ""

    def allowed(self) -> str:
        base = self._allowed()
        if self.nullable:
            return f"{base}, or null" + (f" ({self.null_means})" if self.null_means else "")
        return base

    def check(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        return self._check(value)

    def _allowed(self) -> str:
        raise NotImplementedError

    def _check(self, value: Any) -> Any:
        raise NotImplementedError

    def edges(self) -> list[Any]:
        return [None] if self.nullable else []


def _reject(domain: Domain, extra: str = "") -> ValueError:
    return ValueError(domain.allowed() + extra)


@dataclass(frozen=True)
class Real(Domain):
    """A finite real number, within float32's range where it multiplies float32 tensors
    (``float32``), between ``low`` and ``high`` (open where said); ``why`` says what it is."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    why: str = ""
    nullable: bool = False
    null_means: str = ""
    float32: bool = True

    def _allowed(self) -> str:
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            text = f"in {left}{_num(lo)}, {_num(hi)}{right}"
        elif lo is not None:
            text = f"{'>' if self.low_open else '>='} {_num(lo)}"
        elif hi is not None:
            text = f"{'<' if self.high_open else '<='} {_num(hi)}"
        else:
            text = "a number"
        return f"{text} ({self.why})" if self.why else text

    def inside(self, v: float) -> bool:
        lo, hi = self.low, self.high
        above = lo is None or (v > lo if self.low_open else v >= lo)
        below = hi is None or (v < hi if self.high_open else v <= hi)
        return above and below

    def _check(self, value: Any) -> float:
        if not is_num(value) or not self.inside(value):
            raise _reject(self)
        if self.float32 and not in_float32(value):
            raise _reject(self, f", {_F32_RANGE}")
        return float(value)

    def edges(self) -> list[Any]:
        values = [0.0, F32_TINY, -F32_TINY, F32_MAX, -F32_MAX, math.nan, math.inf, -math.inf]
        values += [True, "abc"]
        for bound in (self.low, self.high):
            if bound is not None:
                values += [bound, *_around(bound)]
        return [*super().edges(), *dict.fromkeys(values)]


def _around(bound: float) -> list[float]:
    """The neighbours of ``bound`` in float64 and in float32, on both sides."""
    import numpy as np

    out = []
    for kind in (np.float64, np.float32):
        for direction in (-math.inf, math.inf):
            out.append(float(np.nextafter(kind(bound), kind(direction))))
    return out


@dataclass(frozen=True)
class Integer(Domain):
    """A whole number (not a bool) between ``low`` and ``high`` (inclusive)."""

    low: int | None = None
    high: int | None = None
    why: str = ""
    nullable: bool = False
    null_means: str = ""

    def _allowed(self) -> str:
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            text = f"an integer >= {lo} (at most {hi})"
        elif lo is not None:
            text = f"an integer >= {lo}"
        elif hi is not None:
            text = f"an integer <= {hi}"
        else:
            text = "an integer"
        return f"{text} ({self.why})" if self.why else text

    def _check(self, value: Any) -> int:
        low_ok = self.low is None or (is_int(value) and value >= self.low)
        high_ok = self.high is None or (is_int(value) and value <= self.high)
        if not is_int(value) or not low_ok or not high_ok:
            raise _reject(self)
        return value

    def edges(self) -> list[Any]:
        values: list[Any] = [0, 1, -1, 2**31, 2**63, 1.0, 0.5, math.nan, True, "abc"]
        for bound in (self.low, self.high):
            if bound is not None:
                values += [bound - 1, bound, bound + 1]
        return [*super().edges(), *dict.fromkeys(values)]


@dataclass(frozen=True)
class Choice(Domain):
    """One of ``options``."""

    options: tuple[Any, ...] = ()
    why: str = ""
    nullable: bool = False
    null_means: str = ""

    def _allowed(self) -> str:
        listed = ", ".join(repr(o) for o in self.options)
        text = f"one of {listed}" if len(self.options) > 2 else " or ".join(map(repr, self.options))
        return f"{text} ({self.why})" if self.why else text

    def _check(self, value: Any) -> Any:
        if isinstance(value, bool) or value not in self.options:
            raise _reject(self)
        return value

    def edges(self) -> list[Any]:
        return [*super().edges(), *self.options, "abc", 0, True]


@dataclass(frozen=True)
class Flag(Domain):
    """true or false."""

    why: str = ""
    nullable: bool = False

    def _allowed(self) -> str:
        return "true or false" + (f" ({self.why})" if self.why else "")

    def _check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _reject(self)
        return value

    def edges(self) -> list[Any]:
        return [*super().edges(), True, False, 0, "abc"]


@dataclass(frozen=True)
class Text(Domain):
    """A non-empty string (a name, a folder that may not exist yet)."""

    what: str = "a string"
    nullable: bool = False
    null_means: str = ""

    def _allowed(self) -> str:
        return self.what

    def _check(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise _reject(self)
        return value

    def edges(self) -> list[Any]:
        return [*super().edges(), "", 0, True]


@dataclass(frozen=True)
class File(Domain):
    """The path of an existing file (``~`` expanded), with one of ``suffixes`` where given."""

    what: str = "a file"
    suffixes: tuple[str, ...] = ()
    nullable: bool = False
    null_means: str = ""

    def _allowed(self) -> str:
        kinds = f" ({', '.join(self.suffixes)})" if self.suffixes else ""
        return f"the path of an existing {self.what}{kinds}"

    def _check(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise _reject(self)
        path = Path(value).expanduser()
        if self.suffixes and path.suffix not in self.suffixes:
            raise _reject(self, f"; it ends in {path.suffix or 'no suffix'!r}")
        try:
            found = path.is_file()
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte
            found = False
        if not found:
            raise _reject(self, "; no such file")
        return value

    def edges(self) -> list[Any]:
        return [*super().edges(), "", "no/such/file" + "".join(self.suffixes[:1]), 0]


@dataclass(frozen=True)
class Sequence(Domain):
    """A list whose items are each in ``item``'s domain (``length`` of them, where given)."""

    item: Domain = Real()
    length: int | None = None
    nullable: bool = False
    null_means: str = ""

    def _allowed(self) -> str:
        count = f"{self.length} " if self.length is not None else ""
        return f"a list of {count}values, each {self.item.allowed()}"

    def _check(self, value: Any) -> list[Any]:
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            raise _reject(self)
        if self.length is not None and len(value) != self.length:
            raise _reject(self, f"; it has {len(value)}")
        try:
            return [self.item.check(v) for v in value]
        except ValueError:
            raise _reject(self) from None

    def edges(self) -> list[Any]:
        n = self.length or 1
        items = [[edge] * n for edge in self.item.edges()]
        return [*super().edges(), [], "abc", [1] * (n + 1), *items]


@dataclass(frozen=True)
class Matrix(Domain):
    """A K×K row-stochastic matrix (a noise transition matrix), as nested lists or an array."""

    nullable: bool = False
    null_means: str = ""

    def _allowed(self) -> str:
        return "a K×K row-stochastic matrix (rows of non-negative numbers summing to 1)"

    def _check(self, value: Any) -> Any:
        import numpy as np

        try:
            matrix = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise _reject(self) from None
        square = matrix.ndim == 2 and matrix.shape[0] == matrix.shape[1] and matrix.size > 0
        if not square or not np.isfinite(matrix).all() or (matrix < 0).any():
            raise _reject(self)
        if not np.allclose(matrix.sum(1), 1, atol=1e-6):
            raise _reject(self)
        return matrix

    def edges(self) -> list[Any]:
        return [*super().edges(), [[0.5, 0.5]], [[math.nan]], [[1.0]], "abc"]
