"""Checking one user-given value (a YAML field or a command-line option) against its rule: type,
finiteness, range and choices, as one :class:`ConfigError` line naming where it came from and
the key.

Why our own and not pydantic/jsonschema: the rules are a handful of numeric ranges, and each
failure must be one line in the project's format (``FILE: key must be ..., got VALUE``); a
schema library's multi-line reports would need rewriting anyway.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from espnet_prune.errors import ConfigError

KIND_WORDS = {int: "a whole number", float: "a finite number", str: "a string",
              bool: "true or false", dict: "a mapping"}


@dataclass(frozen=True)
class Rule:
    """What a value may be. ``kind``: ``int`` (whole numbers, not booleans), ``float`` (any finite
    int or float, not booleans or strings), ``str`` or ``bool``; ``optional``: ``None`` (YAML
    ``null``) allowed; ``low``/``high``: inclusive bounds unless ``low_open``/``high_open``;
    ``choices``: the allowed values; ``why``: said after a range failure (the reason for the
    limit)."""

    kind: type
    optional: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    why: str = ""

    def describe(self) -> str:
        words = KIND_WORDS[self.kind]
        if self.choices is not None:
            words = f"one of {', '.join(map(repr, self.choices))}"
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            bounds.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        if bounds:
            words += " " + " and ".join(bounds)
        return words

    def note(self, range_failure: bool) -> str:
        """What follows the value in an error line: the limit's reason, and that null is
        allowed."""
        parts = ([self.why] if range_failure and self.why else []) + (
            ["null allowed"] if self.optional else [])
        return f" ({'; '.join(parts)})" if parts else ""


def _type_ok(value, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, int)
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def check_value(value, rule: Rule, where, key: str):
    """``value`` if it satisfies ``rule`` (ints of a float rule become floats); otherwise one
    ConfigError line ``WHERE: KEY must be ..., got VALUE``."""
    if value is None and rule.optional:
        return None
    if not _type_ok(value, rule.kind):
        raise _failure(where, key, rule, value, False)
    if rule.kind is float:
        if not math.isfinite(value):
            raise _failure(where, key, rule, value, False)
        value = float(value)
    if rule.choices is not None and value not in rule.choices:
        raise _failure(where, key, rule, value, False)
    too_low = rule.low is not None and (value <= rule.low if rule.low_open else value < rule.low)
    too_high = rule.high is not None and (value >= rule.high if rule.high_open
                                          else value > rule.high)
    if too_low or too_high:
        raise _failure(where, key, rule, value, True)
    return value


def _failure(where, key: str, rule: Rule, value, range_failure: bool) -> ConfigError:
    return ConfigError(f"{where}: {key} must be {rule.describe()}, got {_show(value)}"
                       f"{rule.note(range_failure)}")


def check_mapping(conf: Mapping, rules: Mapping[str, Rule], where, prefix: str = "") -> dict:
    """Every key of ``conf`` checked by its rule (unknown keys refused, naming the known ones);
    returns the checked values."""
    if not isinstance(conf, Mapping):
        raise ConfigError(f"{where}: {prefix.rstrip('.') or 'config'} must be a mapping, "
                          f"got {_show(conf)}")
    unknown = sorted(str(key) for key in conf if key not in rules)
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(prefix + k for k in unknown)}"
                          f" (known: {', '.join(sorted(rules))})")
    return {key: check_value(value, rules[key], where, prefix + key) for key, value in conf.items()}


def _show(value) -> str:
    """The value for an error line: its repr, cut short (a YAML list could be huge)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
