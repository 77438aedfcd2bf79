"""Where a pipeline's DER comes from: the same recordings diarized four ways.

* ``full``: the model's segmentation, the real embeddings and clustering (what inference does);
* ``oracle_segmentation``: the reference as segmentation, the real embeddings and clustering;
* ``oracle_clustering``: the model's segmentation, every window-local speaker mapped to the
  reference speaker it overlaps most (:class:`~espnet_prune.infer.oracle.OracleEmbedding`);
* ``oracle_both``: both oracles (what is lost in windowing, aggregation and the powerset's
  limits alone).

Everything else (windows, step, median filter, binarisation, UEM) is the inference config's.
"""

from __future__ import annotations

import json

from espnet_prune.eval.scoring import score
from espnet_prune.infer.clustering import AgglomerativeClustering
from espnet_prune.infer.oracle import OracleEmbedding, OracleSegmentation
from espnet_prune.infer.pipeline import DiarizationPipeline
from espnet_prune.infer.run import (
    build_pipeline_parts,
    load_inference_config,
    load_model,
    model_segmentation,
)

VARIANTS = ("full", "oracle_segmentation", "oracle_clustering", "oracle_both")


def ablate(data_dir, segmentation, to_multilabel, powerset, frame_shift: int, frame_length: int,
           embedding, clustering, config, variants=VARIANTS) -> dict:
    """DER (and its components) of the ``variants`` over the recordings of ``data_dir`` (a
    validated :class:`~espnet_prune.utils.datadir.DataDir` with an RTTM)."""
    from espnet_prune.utils.audio import read_audio

    hypotheses: dict[str, dict] = {name: {} for name in variants}
    geometry = (frame_shift, frame_length)
    for rec in sorted(data_dir.wavs):
        audio = read_audio(data_dir.wavs[rec], config.sample_rate)
        parts = _variants(audio, data_dir.rttm.get(rec, []), segmentation, to_multilabel,
                          powerset, geometry, embedding, clustering, config)
        for name in variants:
            (segment, multilabel), embed, cluster = parts[name]
            pipeline = DiarizationPipeline(segment, multilabel, frame_shift, frame_length, embed,
                                           cluster, config)
            hypotheses[name][rec] = pipeline(audio, rec)
    reference = {rec: data_dir.rttm.get(rec, []) for rec in data_dir.wavs}
    results = {}
    for name in variants:
        scores = score(reference, hypotheses[name], uem=data_dir.uem)
        results[name] = dict(scores["overall"],
                             speakers_found={rec: len({s.speaker for s in segs})
                                             for rec, segs in hypotheses[name].items()})
    results["speakers_true"] = {rec: len({s.speaker for s in segs})
                                for rec, segs in reference.items()}
    return results


def _variants(audio, turns, segmentation, to_multilabel, powerset, geometry, embedding,
              clustering, config) -> dict:
    """(segmentation, to_multilabel), embedding, clustering of each variant for one recording."""
    frame_shift, frame_length = geometry
    probe = DiarizationPipeline(None, None, frame_shift, frame_length, None, None, config)
    window, _, starts = probe.window_starts(len(audio))

    def oracle_segmentation():
        oracle = OracleSegmentation(turns, len(audio), starts, powerset, frame_shift,
                                    frame_length, window, config.sample_rate)
        return oracle, oracle.to_multilabel

    def oracle_embedding():
        return OracleEmbedding(audio, turns, starts, window, frame_shift, frame_length,
                               config.sample_rate)

    # one-hot "embeddings": any threshold below sqrt(2) separates them exactly
    exact = AgglomerativeClustering(threshold=0.5, min_cluster_size=1)
    return {
        "full": ((segmentation, to_multilabel), embedding, clustering),
        "oracle_segmentation": (oracle_segmentation(), embedding, clustering),
        "oracle_clustering": ((segmentation, to_multilabel), oracle_embedding(), exact),
        "oracle_both": (oracle_segmentation(), oracle_embedding(), exact),
    }


def table(results: dict) -> str:
    """Markdown table of :func:`ablate`'s result (percent)."""
    lines = ["|variant|DER|miss|FA|confusion|speaker count right|",
             "|---|---|---|---|---|---|"]
    truth = results["speakers_true"]
    for name in [name for name in VARIANTS if name in results]:
        row = results[name]
        right = sum(row["speakers_found"][rec] == truth[rec] for rec in truth)
        lines.append(
            f"|{name}|{100 * row['der']:.1f}|{100 * row['miss']:.1f}|"
            f"{100 * row['false_alarm']:.1f}|{100 * row['confusion']:.1f}|{right}/{len(truth)}|"
        )
    return "\n".join(lines)


def ablate_model(model_file: str, train_config: str, data_dir: str, config: str | None = None,
                 json_path: str | None = None) -> dict:
    """``diar_ablation``: :func:`ablate` a trained model on a data dir with the inference YAML
    ``config``; prints :func:`table` and writes the numbers to ``json_path`` when given."""
    from espnet_prune.utils.datadir import validate_data_dir, write_text

    data = validate_data_dir(data_dir)
    pipeline_config, embedding, clustering = build_pipeline_parts(
        load_inference_config(config), {})
    model = load_model(train_config, model_file, "cpu")
    segmentation, to_multilabel = model_segmentation(model, "cpu")
    results = ablate(data, segmentation, to_multilabel, model.powerset, model.frame_shift,
                     model.frame_length, embedding, clustering, pipeline_config)
    print(table(results))
    if json_path:
        write_text(json_path, json.dumps(results, indent=1) + "\n")
    return results
