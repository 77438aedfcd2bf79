"""What the command lines share: a ``main`` that parses the options and
calls one library function, user errors as one line on stderr instead of a stack trace, and
boolean options read as ESPnet reads them (without importing espnet2)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from espnet_prune.errors import EspnetPruneError

OUTPUT_HELP = "output .pt (written via a temporary file and a rename)"


def command(get_parser: Callable[[], argparse.ArgumentParser], target: Callable[[], Callable]):
    """``main(argv) -> 0`` of a command line: parse ``argv``, then call the library function
    that ``target()`` imports and returns, with the options as keyword arguments. The import
    sits in the command line's own ``target`` (a reader or an IDE follows it from there) and
    runs only once the options parsed, so ``--help`` or a mistyped option costs no heavy
    import."""

    def main(argv: list[str] | None = None) -> int:
        options = vars(get_parser().parse_args(argv))
        target()(**options)
        return 0

    main.target, main.get_parser = target, get_parser  # for test/bin/test_cli_targets.py
    return main


def file_to_file_command(target: Callable[[], Callable], description: str, input_help: str,
                         output_help: str = OUTPUT_HELP):
    """:func:`command` with the options ``--input SOURCE --output FILE`` (``source``,
    ``output``): a command line that turns one file into another."""

    def get_parser() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(description=description,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("--input", dest="source", required=True, help=input_help)
        parser.add_argument("--output", required=True, help=output_help)
        return parser

    return command(get_parser, target)


def run_main(main: Callable[..., int | None], argv: list[str] | None = None) -> None:
    """Run ``main(argv)`` and exit; :class:`EspnetPruneError` → ``error: ...`` and status 2."""
    try:
        status = main(argv)
    except EspnetPruneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(status or 0)


def str2bool(value: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``), as ESPnet's options read."""
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {value!r}")
