"""Peak memory of an imported DiariZen model diarizing a long synthetic recording.

The options and what is printed: ``--help``, or :mod:`espnet_prune.measure.diarizen_import_memory`.
"""

from __future__ import annotations

from espnet_prune.utils.cli import run_main


def main(argv: list[str] | None = None) -> int:
    from espnet_prune.measure.diarizen_import_memory import main as measure

    measure(argv)
    return 0


if __name__ == "__main__":
    run_main(main)
