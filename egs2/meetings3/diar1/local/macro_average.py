"""Macro average of DER/JER over the test sets of exp/scores.json (the paper's last column).

Each corpus counts once whatever its length, as in the paper's table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from espnet_prune.errors import DataError
from espnet_prune.utils.cli import run_main


def macro_average(scores: dict, test_sets: list[str], source: str = "scores") -> dict:
    table = {}
    for model, per_set in scores.items():
        missing = [t for t in test_sets if t not in per_set]
        if missing:
            raise DataError(f"{source}: model {model!r} has no score for {', '.join(missing)}")
        table[model] = {
            metric: sum(per_set[t][metric] for t in test_sets) / len(test_sets)
            for metric in ("der", "jer")
            if all(per_set[t].get(metric) is not None for t in test_sets)
        }
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=Path, required=True, help="exp/.../scores.json")
    parser.add_argument("--test_sets", nargs="+", required=True)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.scores.is_file():
        raise DataError(f"{args.scores}: scores file does not exist")
    table = macro_average(json.loads(args.scores.read_text()), args.test_sets, str(args.scores))
    for model, metrics in table.items():
        shown = "  ".join(f"{k.upper()} {100 * v:.1f} %" for k, v in metrics.items())
        print(f"macro over {len(args.test_sets)} test sets  {model:8s} {shown}")
    if args.output:
        args.output.write_text(json.dumps(table, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    run_main(main)
