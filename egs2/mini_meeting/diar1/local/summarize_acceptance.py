"""Summarise local/sparsity_acceptance.sh: target vs expected vs real sparsity of each run and
the validation distillation loss of its post-pruning epochs (JSON, then a table)."""

import argparse
import json
import re
from pathlib import Path

VALID_LOSS = re.compile(r"(\d+)epoch results: .*\[valid\].*? loss=(-?[0-9.]+)")


def valid_losses(train_log: Path) -> list[float]:
    return [float(m.group(2)) for m in VALID_LOSS.finditer(train_log.read_text())]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--seconds", type=int, default=None)
    args = parser.parse_args()
    rows = {}
    for summary_file in sorted(Path(args.out_dir).glob("*/prune_summary.json")):
        run = summary_file.parent
        summary = json.loads(summary_file.read_text())
        key = "param_sparsity" if summary["target"] == "params" else "macs_sparsity"
        losses = valid_losses(run / "distill.log")
        rows[run.name] = {
            "target": summary["target"],
            "target_sparsity": summary["target_sparsity"],
            "exported_checkpoint": summary.get("exported_checkpoint"),
            "expected_sparsity": summary["expected_" + key],
            "real_sparsity": summary[key],
            "error": summary[key] - summary["target_sparsity"],
            "param_sparsity": summary["param_sparsity"],
            "macs_sparsity": summary["macs_sparsity"],
            "post_distill_valid_loss": losses,
        }
    print(json.dumps({"runs": rows, "seconds": args.seconds}, indent=1))
    print("| run | target | expected | real after pruning | error | post-distil valid loss "
          "first -> last |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        losses = r["post_distill_valid_loss"]
        trend = f"{losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "n/a"
        print(f"| {name} | {r['target']} {r['target_sparsity']} | {r['expected_sparsity']:.4f} | "
              f"{r['real_sparsity']:.4f} | {r['error']:+.4f} | {trend} |")


if __name__ == "__main__":
    main()
