"""Entry-point wrapper: user errors become one line on stderr, not a stack trace."""

from __future__ import annotations

import sys
from collections.abc import Callable

from espnet_prune.errors import EspnetPruneError


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
