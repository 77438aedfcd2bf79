"""Speed and agreement of the exported (ONNX fp32/int8) segmentation model against PyTorch.

The options and what is printed: ``--help``, or :mod:`espnet_prune.measure.export_bench`.
"""

from __future__ import annotations

from espnet_prune.utils.cli import run_main


def main(argv: list[str] | None = None) -> int:
    from espnet_prune.measure.export_bench import main as measure

    measure(argv)
    return 0


if __name__ == "__main__":
    run_main(main)
