"""The rules of every value of the inference YAML, checked before any work: each failure is one
line naming the file and the key.

Field names and types come from :class:`espnet_prune.infer.pipeline.InferenceConfig` (the one
owner of the inference defaults) and from the constructors of the clustering and embedding
classes; this module adds only what they cannot say: the ranges, and the limits that keep memory
bounded (:func:`check_memory`). A test asserts that every field of ``InferenceConfig`` has a range
here, so a new field cannot go unchecked.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing

from espnet_prune.errors import ConfigError
from espnet_prune.utils.values import Rule, check_mapping, check_value

# The peak memory a configuration may plan for (bytes): what the pipeline's largest arrays need
# at least. A window of 10^6 s would otherwise die in a NumPy allocation deep in the run.
MEMORY_BUDGET = 16 * 2**30
SAMPLE_RATE = 16000  # every frontend of the project reads 16 kHz audio
FRAMES_PER_SECOND = 50  # WavLM's 20 ms frames: the finest frame rate of the segmentation models
ATTENTION_HEADS = 12  # WavLM Base+ (16 for Large: the estimate is a lower bound either way)
MAX_MEDIAN_FILTER = 1001  # frames: 20 s at 20 ms, longer than any window the models are run on

# the range of each InferenceConfig field (its type and whether null is allowed come from the
# dataclass annotations)
RANGES: dict[str, dict] = {
    "window": dict(low=0.0, low_open=True, high=3600.0,
                   why="an hour; the memory budget below limits it further"),
    "step": dict(low=0.0, low_open=True),
    "step_ratio": dict(low=0.0, low_open=True, high=1.0,
                       why="the step is a fraction of the window"),
    "batch_size": dict(low=1),
    "forward_batch_size": dict(low=1),
    "median_filter": dict(low=0, high=MAX_MEDIAN_FILTER,
                          why="0 or 1: no filter; at most 20 s of 20 ms frames"),
    "min_clean_fraction": dict(low=0.0, high=1.0, why="a fraction of the window's frames"),
    "min_duration_off": dict(low=0.0),
    "num_speakers": dict(low=1),
    "min_speakers": dict(low=1),
    "max_speakers": dict(low=1),
    "sample_rate": dict(choices=(SAMPLE_RATE,)),
    # AHC keeps N²/2 float64 distances
    "max_cluster_embeddings": dict(low=0, high=int(math.sqrt(2 * MEMORY_BUDGET / 8)),
                                   why="AHC's N²/2 distances must fit the memory budget"),
    "silence_floor_db": dict(high=0.0, why="dB re full scale: no frame is louder than 0 dB; "
                             "null for no floor"),
    "frame_times": dict(choices=("middle", "hop")),
    "pad_last_window": dict(),
}

# clustering: name -> ranges of its constructor's options (types from the constructor)
UNIT_DISTANCE = dict(low=0.0, low_open=True, high=2.0,
                     why="distances between unit-length embeddings lie in [0, 2]")
CLUSTERING_RANGES: dict[str, dict[str, dict]] = {
    "ahc": {"threshold": UNIT_DISTANCE, "min_cluster_size": dict(low=1)},
    "vbx": {"threshold": UNIT_DISTANCE, "fa": dict(low=0.0, low_open=True),
            "fb": dict(low=0.0, low_open=True), "max_iters": dict(low=1, high=10000),
            "min_speaker_prior": dict(low=0.0, high=1.0, high_open=True)},
}


def _kind(annotation) -> tuple[type, bool]:
    """(``int``/``float``/``str``/``bool``, optional) of a type annotation."""
    args = typing.get_args(annotation)
    optional = type(None) in args
    if args:
        kinds = [arg for arg in args if arg is not type(None)]
        annotation = kinds[0]
    if annotation not in (int, float, str, bool):
        raise TypeError(f"no rule for annotation {annotation!r}")
    return annotation, optional


def inference_rules() -> dict[str, Rule]:
    """The rule of every :class:`InferenceConfig` field."""
    from espnet_prune.infer.pipeline import InferenceConfig

    hints = typing.get_type_hints(InferenceConfig)
    rules = {}
    for field in dataclasses.fields(InferenceConfig):
        kind, optional = _kind(hints[field.name])
        rules[field.name] = Rule(kind, optional, **RANGES[field.name])
    return rules


def _constructor_rules(cls, ranges: dict[str, dict], skip=()) -> dict[str, Rule]:
    hints = typing.get_type_hints(cls.__init__)
    rules = {}
    for name in inspect.signature(cls.__init__).parameters:
        if name == "self" or name in skip:
            continue
        kind, optional = _kind(hints[name])
        rules[name] = Rule(kind, optional, **ranges.get(name, {}))
    return rules


def clustering_rules(name: str) -> dict[str, Rule]:
    from espnet_prune.infer.clustering import AgglomerativeClustering, VBxClustering

    if name == "ahc":
        return _constructor_rules(AgglomerativeClustering, CLUSTERING_RANGES["ahc"])
    rules = _constructor_rules(VBxClustering, CLUSTERING_RANGES["vbx"], skip=("plda",))
    rules["plda"] = Rule(str)  # the .npz file of diar_plda
    return rules


def embedding_rules(name: str) -> dict[str, Rule]:
    """Options of the extractor ``name``: its constructor's; numbers (sizes, durations) > 0."""
    from espnet_prune.infer.embeddings import EMBEDDINGS

    cls = EMBEDDINGS[name]
    hints = typing.get_type_hints(cls.__init__)
    rules = {}
    for param in inspect.signature(cls.__init__).parameters:
        if param == "self":
            continue
        kind, optional = _kind(hints[param])
        positive = dict(low=0, low_open=True) if kind in (int, float) else {}
        rules[param] = Rule(kind, optional, **positive)
    return rules


def check_inference_config(conf: dict, where) -> dict:
    """``conf`` (the inference YAML's mapping, read from ``where``) if every value holds;
    otherwise one ConfigError line naming ``where`` and the key. Nothing is built (and torch,
    which the embedding registry imports, only with an ``embedding`` section)."""
    conf = dict(conf)
    embedding = conf.pop("embedding", None)
    clustering = conf.pop("clustering", None)
    values = check_mapping(conf, inference_rules(), where)
    if embedding is not None:
        from espnet_prune.infer.embeddings import DEFAULT_EMBEDDING, EMBEDDINGS

        embedding = check_mapping(embedding, {"name": Rule(str, choices=tuple(EMBEDDINGS)),
                                              "conf": Rule(dict, optional=True)},
                                  where, "embedding.")
        if embedding.get("conf") is not None:
            name = embedding.get("name", DEFAULT_EMBEDDING)
            check_mapping(embedding["conf"], embedding_rules(name), where, "embedding.conf.")
    if clustering is not None:
        if not isinstance(clustering, dict):
            raise ConfigError(f"{where}: clustering must be a mapping, got {clustering!r}")
        name = check_value(clustering.get("name", "ahc"), Rule(str, choices=("ahc", "vbx")),
                           where, "clustering.name")
        options = {k: v for k, v in clustering.items() if k != "name"}
        check_mapping(options, clustering_rules(name), where, "clustering.")
    check_memory(values, where)
    result = dict(values)
    if embedding is not None:
        result["embedding"] = embedding
    if clustering is not None:
        result["clustering"] = clustering
    return result


def check_memory(values: dict, where) -> None:
    """The cross-field limits: ``step <= window``, and the arrays of one pipeline step within
    :data:`MEMORY_BUDGET`: the step's windows (twice: the span read and the batch, float32) plus,
    per window of a forward, its samples and one layer's attention maps
    (heads × frames² float32). A lower bound of what a forward needs: a configuration over it
    cannot run."""
    from espnet_prune.infer.pipeline import InferenceConfig

    defaults = {f.name: f.default for f in dataclasses.fields(InferenceConfig)}
    get = {**defaults, **values}.__getitem__
    window = get("window")
    if get("step") is not None and get("step") > window:
        raise ConfigError(f"{where}: step must be <= window ({window:g} s), got {get('step')!r}")
    samples = window * SAMPLE_RATE
    frames = window * FRAMES_PER_SECOND
    per_forward = get("forward_batch_size") or get("batch_size")
    per_forward = min(per_forward, get("batch_size"))
    need = 2 * get("batch_size") * samples * 4 + per_forward * (
        samples * 4 + ATTENTION_HEADS * frames**2 * 4)
    if need > MEMORY_BUDGET:
        raise ConfigError(
            f"{where}: window {window:g} s with batch_size {get('batch_size')} and "
            f"forward_batch_size {get('forward_batch_size')} needs at least "
            f"{need / 2**30:.3g} GiB, over the {MEMORY_BUDGET / 2**30:g} GiB budget "
            "(attention grows with the square of the window): shorten the window or lower "
            "the batch sizes")
