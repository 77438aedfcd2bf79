"""Reading the project's YAML files (training ``config.yaml``, inference configs): the one
place that turns a missing file, unreadable bytes or broken YAML into one line naming the file
(and the line and column of the YAML problem)."""

from __future__ import annotations

from pathlib import Path

from espnet_prune.errors import ConfigError


def yaml_error(exc, path, what: str) -> ConfigError:
    """One-line ConfigError for a ``yaml.YAMLError`` raised while reading ``path`` (``None``:
    the file named by the error's position mark)."""
    mark = getattr(exc, "problem_mark", None)
    if path is None and mark is not None:
        path = mark.name
    where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
    return ConfigError(f"{path}{where}: {what} is not valid YAML ({problem})")


def read_yaml_mapping(path, what: str, empty_ok: bool = False) -> dict:
    """The YAML file ``path`` as a mapping. ``what`` names it in errors (e.g.
    ``--train_config``); ``empty_ok``: an empty file is ``{}`` instead of an error."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} file does not exist")
    try:
        conf = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as exc:
        raise yaml_error(exc, path, what) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc})") from None
    if conf is None and empty_ok:
        return {}
    if not isinstance(conf, dict):
        raise ConfigError(f"{path}: {what} must be a YAML mapping, got {type(conf).__name__}")
    return conf
