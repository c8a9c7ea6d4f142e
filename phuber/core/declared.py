"""Classes that declare their parameters' domains (``phuber.core.domains``).

A class that takes parameters (a loss, a schedule, LogitClip) says what each one accepts in
``domains``; subclassing ``Declared`` makes its constructor check every declared parameter
before its body runs and report every bad one at once (``InvalidValues``). No heavy imports.
"""

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from phuber.core.domains import Domain
from phuber.core.errors import InvalidValue, InvalidValues


def declare(**domains: Domain) -> Mapping[str, Domain]:
    """A class's ``domains``: parameter name → ``Domain``, read-only."""
    return MappingProxyType(domains)


def check_values(domains: Mapping[str, Domain], values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``values`` that have a domain, as their consumer uses them; every value out of its
    domain is reported at once (``InvalidValue`` for one, ``InvalidValues`` for several)."""
    checked, bad = {}, []
    for name, value in values.items():
        if name in domains:
            try:
                checked[name] = domains[name].check(value)
            except ValueError as err:
                bad.append(InvalidValue(name, value, str(err)))
    if len(bad) == 1:
        raise bad[0]
    if bad:
        raise InvalidValues(bad)
    return checked


class Declared:
    """A class whose constructor parameters have declared ``domains`` (name → ``Domain``;
    a subclass adds to or replaces its bases'). Every declared parameter is checked before the
    constructor's body runs, all of them at once, and the body receives the checked values.
    ``all_domains()`` is what the docs and the property tests enumerate."""

    domains: ClassVar[Mapping[str, Domain]] = declare()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            cls.__init__ = _checked(cls.__init__)  # type: ignore[method-assign]

    @classmethod
    def all_domains(cls) -> dict[str, Domain]:
        merged: dict[str, Domain] = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass).get("domains", {}))
        return merged


def _checked(init: Callable[..., None]) -> Callable[..., None]:
    signature = inspect.signature(init)
    keyword = next((p.name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD), None)

    @functools.wraps(init)
    def init_checked(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        extra = values.pop(keyword, {}) if keyword else {}
        checked = check_values(type(self).all_domains(), {**values, **extra})
        for name, value in checked.items():
            if name in bound.arguments:
                bound.arguments[name] = value
            elif keyword:
                bound.arguments[keyword][name] = value
        init(*bound.args, **bound.kwargs)

    return init_checked


def undeclared(cls: type, ignore: Iterable[str] = ()) -> list[str]:
    """The constructor parameters of ``cls`` without a declared domain (``ignore``: those the
    builder passes, not the user)."""
    declared = cls.all_domains() if issubclass(cls, Declared) else {}
    names = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return [n for n in names if n not in declared and n not in ignore]
