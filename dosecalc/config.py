"""The user's settings file: `config.toml` in click's app directory (`~/.config/dosecalc/` on Linux).

Four keys, each a string: `protocols` (a protocols file), `operator` (who overrides soft limits),
`paper` (`a4` or `letter`) and `audit_log` (a file). Precedence: the command-line option, then the
environment variable, then this file, then the built-in default. Relative paths in the file are
relative to the file's folder. Nothing here imports rich; click only for the app directory.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from dosecalc.errors import InputError, Problem

ENV_CONFIG = "DOSECALC_CONFIG"  # another settings file (or "" for none): for scripts and tests
MAX_BYTES = 64 * 1024
PAPERS = ("a4", "letter")
# key -> (environment variable, is a path)
KEYS: dict[str, tuple[str, bool]] = {
    "protocols": ("DOSECALC_PROTOCOLS", True),
    "operator": ("DOSECALC_OPERATOR", False),
    "paper": ("DOSECALC_PAPER", False),
    "audit_log": ("DOSECALC_AUDIT_LOG", True),
}


@dataclass(frozen=True)
class Config:
    path: str
    found: bool
    values: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        return self.values.get(key)


def default_path() -> str:
    import click

    return os.path.join(click.get_app_dir("dosecalc"), "config.toml")


def config_path(environ: Mapping[str, str] | None = None) -> str | None:
    """The settings file to read: $DOSECALC_CONFIG when set (empty: none), else the app directory's."""
    environ = os.environ if environ is None else environ
    if ENV_CONFIG in environ:
        return environ[ENV_CONFIG] or None
    return default_path()


def _problem(path: str, key: str, message: str) -> InputError:
    from dosecalc.sanitize import terminal

    printable = partial(terminal, limit=None)  # paths and values in full, escaped

    return InputError(Problem("config", key, f"config: {printable(path)}: {message}"))


def load(path: str | None = None) -> Config:
    """Read and check the settings file. The default one may be missing (an empty configuration);
    a file named by $DOSECALC_CONFIG (or by `path`) must exist, or the site's settings would
    silently not apply."""
    named = path is not None or bool(os.environ.get(ENV_CONFIG))
    if path is None:
        path = config_path()
    if path is None:
        return Config("", False)
    from dosecalc.protocols_file import read_regular

    try:
        raw = read_regular(path, MAX_BYTES + 1)
    except FileNotFoundError:
        if named:
            raise _problem(
                path,
                "not_found",
                f"does not exist (named by {ENV_CONFIG}; set {ENV_CONFIG}= for no settings file)",
            ) from None
        return Config(path, False)
    except (OSError, ValueError) as exc:
        raise _problem(path, "unreadable", f"cannot read the settings file ({exc})") from None
    if len(raw) > MAX_BYTES:
        raise _problem(path, "too_large", f"is larger than {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _problem(path, "invalid", f"is not valid UTF-8 TOML ({exc})") from None
    # The protocols file's bounds, checked before tomllib recurses once per level of nesting.
    from dosecalc.protocols_file import _shape_problem

    shape = _shape_problem(text)
    if shape is not None:
        raise _problem(path, "too_complex", shape)
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _problem(path, "invalid", f"is not valid UTF-8 TOML ({exc})") from None
    except (RecursionError, MemoryError):  # the bounds above should make this unreachable
        raise _problem(path, "too_complex", "is too deeply nested to read") from None
    return Config(path, True, _checked(path, data))


def _checked(path: str, data: dict[str, Any]) -> dict[str, str]:
    from dosecalc.sanitize import has_unsafe, terminal, unreadable

    printable = partial(terminal, limit=None)  # paths and values in full, escaped

    problems = []
    values: dict[str, str] = {}
    for key, value in data.items():
        if key not in KEYS:
            known = ", ".join(KEYS)
            problems.append(f"unknown key '{printable(key)}' (accepted: {known})")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"'{key}' must be a non-empty string")
        elif has_unsafe(value):
            problems.append(f"'{key}' holds control or format characters: {printable(value)}")
        elif (why := unreadable(value)) is not None:
            problems.append(f"'{key}' {why}: {printable(value)}")
        elif key == "paper" and value not in PAPERS:
            problems.append(f"'paper' is '{printable(value)}': accepted: {', '.join(PAPERS)}")
        else:
            if KEYS[key][1]:
                value = os.path.join(os.path.dirname(path), os.path.expanduser(value))
            values[key] = value
    if problems:
        raise InputError(
            [Problem("config", "invalid", f"config: {printable(path)}: {p}") for p in problems]
        )
    return values


def effective(
    config: Config, given: dict[str, tuple[str | None, str]], shipped: str
) -> list[tuple[str, str, str]]:
    """(key, value, where it came from) for every setting, in KEYS order.

    `given` maps a key to the value a command-line option gave (or None) and its option name.
    """
    rows = []
    for key, (variable, _is_path) in KEYS.items():
        value, option = given.get(key, (None, ""))
        if value is not None:
            rows.append((key, value, f"option {option}"))
        elif os.environ.get(variable):
            rows.append((key, os.environ[variable], f"environment {variable}"))
        elif config.get(key) is not None:
            rows.append((key, str(config.get(key)), f"config file {config.path}"))
        else:
            default = {"protocols": shipped, "paper": "a4"}.get(key, "(none)")
            rows.append((key, default, "default"))
    return rows
