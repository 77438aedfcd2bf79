"""Each command line built with :func:`espnet_prune.utils.cli.command` calls a library function
that exists and takes exactly the command line's options as keyword arguments (checked without
running anything, so a renamed option or parameter fails here, not in a user's run)."""

import importlib
import inspect
import pkgutil

import pytest

import espnet_prune.bin

MODULES = sorted(info.name for info in pkgutil.iter_modules(espnet_prune.bin.__path__))
COMMANDS = [name for name in MODULES
            if hasattr(importlib.import_module(f"espnet_prune.bin.{name}").main,
                       "target")]


def test_the_simple_command_lines_are_commands():
    # guards the parametrisation below against finding nothing
    assert {"diar_inference", "diar_score", "validate_data", "wavlm_stats",
            "wavlm_prune", "wavlm_bench"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_target_takes_the_options(name):
    main = importlib.import_module(f"espnet_prune.bin.{name}").main
    options = {action.dest for action in main.get_parser()._actions if action.dest != "help"}
    function = main.target()
    parameters = inspect.signature(function).parameters
    assert set(parameters) == options, f"{function.__module__}.{function.__qualname__}"
