"""Real-time factor and peak memory of the whole diarization pipeline on CPU.

Times the pipeline (sliding windows through an EEND model with a WavLM frontend, resemblyzer
or WeSpeaker ResNet34 embeddings, AHC; the time split into segmentation, embedding, clustering
and the rest) on a synthetic conversation (speaker activity for the embeddings taken from
its turns, since random weights give no realistic activity) with the unpruned and the
80 %-pruned WavLM shape, the latter also exported to ONNX (fp32 and dynamic int8, run by
onnxruntime) (random weights, the ResNet34's too: the goals are about speed, not
accuracy), then diarizes a long recording in a child process and reads its peak RSS.
RTF = wall time / audio duration; CPU-RTF = CPU time of all threads / audio duration (on a
shared machine the wall time depends on the neighbours: on N idle cores the wall time is
about CPU time / N at best).
Goals: pruned Base+ RTF <= 0.1 on 2 cores; 2 h of audio in <= 2 GB. At the paper's
settings (8 s windows, 0.8 s step): pruned RTF <= 0.15 with resemblyzer, <= 0.25 with the
ResNet34.
"""

from __future__ import annotations

import argparse

from espnet_prune.measure.bench import MODEL_ROWS
from espnet_prune.utils.cli import command, run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="base_plus", choices=("base_plus", "tiny"),
                        help="model shapes; tiny is for tests")
    parser.add_argument("--duration", type=float, default=600.0, help="RTF recording (s)")
    parser.add_argument("--memory_duration", type=float, default=7200.0,
                        help="recording for the peak-RSS run (s); 0: skip it")
    parser.add_argument("--memory_model", default="pruned", choices=tuple(MODEL_ROWS),
                        help="the model of the peak-RSS run")
    parser.add_argument("--models", default="unpruned,pruned,pruned_onnx,pruned_int8",
                        help="which models to time (comma-separated): " + ", ".join(MODEL_ROWS)
                        + " (_onnx / _int8: exported with diar_export, run by onnxruntime)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--window", type=float, default=8.0, help="window (s)")
    parser.add_argument("--step", type=float, default=None,
                        help="window step (s); default 10 %% of the window (the paper)")
    parser.add_argument("--memory_step", type=float, default=None,
                        help="window step of the peak-RSS run (s); default: --step")
    parser.add_argument("--json", dest="json_path", default=None,
                        help="also write the results here")
    parser.add_argument("--batch_size", type=int, default=8, help="windows per model call")
    parser.add_argument("--embedding", default="resemblyzer",
                        choices=("resemblyzer", "wespeaker_resnet34"),
                        help="speaker embedding (the ResNet34 with random weights)")
    parser.add_argument("--trunk", default="window", choices=("window", "recording"),
                        help="ResNet34 trunk once per window (reference) or per recording")
    return parser


def target():
    from espnet_prune.measure.bench import benchmark_pipeline

    return benchmark_pipeline


main = command(get_parser, target)


if __name__ == "__main__":
    run_main(main)
