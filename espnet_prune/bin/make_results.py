"""Collect a recipe's scores into ``exp/scores.json`` and ``RESULTS.md`` (recipe stage 8).

The JSON is what scripts and CI compare (fractions, one entry per model and test set); the
Markdown follows ESPnet's RESULTS.md layout (environment header, then tables) so a result can
be traced to the code, versions and command that produced it. The CPU speed-up comes from
each model's ``wavlm_bench.json`` (``wavlm_bench --checkpoint``), relative to the teacher.
"""

from __future__ import annotations

import argparse

from espnet_prune.utils.cli import run_main


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--expdir", default="exp")
    parser.add_argument("--models", nargs="+", default=["fbank", "teacher", "pruned"],
                        help="one row each; pruned models are named pruned[_pt][_sNN] "
                        "(_pt: pruned before fine-tuning, _sNN: target NN %%)")
    parser.add_argument("--test_sets", nargs="+", required=True)
    parser.add_argument("--inference_tag", default="decode",
                        help="<expdir>/<model>/<inference_tag>/<test_set>/score.json")
    parser.add_argument("--output_json", default=None, help="default <expdir>/scores.json")
    parser.add_argument("--output_md", default="RESULTS.md")
    parser.add_argument("--title", default="")
    parser.add_argument("--command", default="", help="the command line of the run")
    parser.add_argument("--macro_average", action="store_true",
                        help="add the macro average over the test sets (each counted once) to "
                        "RESULTS.md and write it to <expdir>/macro_der.json")
    parser.add_argument("--plot", default=None,
                        help="PNG of DER against the WavLM's MACs/s, one marker per model, "
                        "the two pruning orders in two colours (e.g. exp/results.png)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from espnet_prune.eval.results import make_results

    args = get_parser().parse_args(argv)
    output_json = make_results(
        args.expdir, args.models, args.test_sets, args.inference_tag, args.output_json,
        args.output_md, args.title, args.command, args.macro_average, args.plot,
    )
    print(f"wrote {output_json} and {args.output_md}")
    return 0


if __name__ == "__main__":
    run_main(main)
