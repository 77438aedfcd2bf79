"""DER effect of the ResNet34 trunk once per recording (``embedding.conf.trunk: recording``)
against the reference's trunk per window, on a scored data dir.

Without the released ResNet34 weights (nothing can be downloaded here) the ResNet34 has random
weights (``torch.manual_seed(0)``, pyannote's checkpoint layout). With them, AHC at the
config's threshold puts every embedding of a recording in one cluster whatever the trunk mode
(BENCHMARKS.md): that DER says nothing about the option. Here each recording is clustered into
its reference number of speakers (``num_speakers``), so the result does depend on how the
embeddings group, and both modes see the same segmentation, windows and clustering::

    python -m espnet_prune.bin.trunk_option_der --data_dir egs2/mini_meeting/diar1/data/test \\
        --train_config egs2/mini_meeting/diar1/exp/pruned/config.yaml \\
        --model_file egs2/mini_meeting/diar1/exp/pruned/valid.loss.ave.pth \\
        --config egs2/mini_meeting/diar1/conf/inference.yaml --json trunk_der.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

MODES = ("window", "recording")


def trunk_option_der(data_dir: str, train_config: str, model_file: str, config: str,
                     threshold: float = 0.7) -> dict:
    """DER (collar 0) per trunk mode, each recording clustered into its reference count."""
    import torch

    from espnet_prune.eval.scoring import score
    from espnet_prune.infer.clustering import AgglomerativeClustering
    from espnet_prune.infer.embeddings import build_embedding
    from espnet_prune.infer.pipeline import DiarizationPipeline
    from espnet_prune.infer.run import (
        build_pipeline_parts,
        load_inference_config,
        load_model,
        model_segmentation,
    )
    from espnet_prune.infer.wespeaker import WeSpeakerResNet34
    from espnet_prune.utils.audio import read_audio
    from espnet_prune.utils.datadir import validate_data_dir

    torch.set_num_threads(2)
    data = validate_data_dir(data_dir)
    base, _, _ = build_pipeline_parts(load_inference_config(config), {})
    model = load_model(train_config, model_file, "cpu")
    segmentation, to_multilabel = model_segmentation(model, "cpu")
    reference = {rec: data.rttm.get(rec, []) for rec in data.wavs}
    counts = {rec: len({s.speaker for s in turns}) for rec, turns in reference.items()}
    results = {"speakers_true": counts, "threshold": threshold, "weights": "random (seed 0)",
               "window_seconds": base.window, "step_seconds": base.step_seconds}
    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        checkpoint = Path(folder) / "resnet34_random.pt"
        torch.save({"state_dict": WeSpeakerResNet34().state_dict()}, checkpoint)
        for mode in MODES:
            embedding = build_embedding("wespeaker_resnet34", checkpoint=str(checkpoint),
                                        trunk=mode)
            hypotheses = {}
            for rec in sorted(data.wavs):
                if counts[rec] == 0:
                    continue
                pipeline = DiarizationPipeline(
                    segmentation, to_multilabel, model.frame_shift, model.frame_length,
                    embedding, AgglomerativeClustering(threshold=threshold, min_cluster_size=1),
                    dataclasses.replace(base, num_speakers=counts[rec], min_speakers=None,
                                        max_speakers=None))
                hypotheses[rec] = pipeline(read_audio(data.wavs[rec], base.sample_rate), rec)
            scored = {rec: reference[rec] for rec in hypotheses}
            results[mode] = score(scored, hypotheses, uem=data.uem)["overall"]
            print(f"{mode}: {json.dumps(results[mode])}", file=sys.stderr)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="data dir with wav.scp and rttm")
    parser.add_argument("--train_config", required=True)
    parser.add_argument("--model_file", required=True)
    parser.add_argument("--config", required=True, help="inference YAML (windows, step, ...)")
    parser.add_argument("--json", dest="json_path", default=None)
    options = parser.parse_args(argv)
    results = trunk_option_der(options.data_dir, options.train_config, options.model_file,
                               options.config)
    print("| trunk | DER | miss | FA | confusion |\n|---|---|---|---|---|")
    for mode in MODES:
        row = results[mode]
        print(f"| {mode} | {100 * row['der']:.2f} | {100 * row['miss']:.2f} | "
              f"{100 * row['false_alarm']:.2f} | {100 * row['confusion']:.2f} |")
    text = json.dumps(results, indent=1)
    print(text)
    if options.json_path:
        from espnet_prune.utils.datadir import write_text

        write_text(options.json_path, text + "\n", make_parents=True)


if __name__ == "__main__":
    main()
