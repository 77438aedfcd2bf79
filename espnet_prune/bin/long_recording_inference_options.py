"""DER and peak memory of the clustering subsample and the frame-time options on a long
generated meeting (oracle segmentation, synthetic embeddings).

The options and what is printed: ``--help``, or
:mod:`espnet_prune.measure.long_recording_inference_options`.
"""

from __future__ import annotations

from espnet_prune.utils.cli import run_main


def main(argv: list[str] | None = None) -> int:
    from espnet_prune.measure.long_recording_inference_options import main as measure

    return measure(argv) or 0


if __name__ == "__main__":
    run_main(main)
