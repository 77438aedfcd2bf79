"""The reference's own inference functions, run from DiariZen's pyannote.audio fork at the pinned
commit (test/diarizen_reference.py): ``Inference.aggregate``, ``speaker_count``,
``to_diarization``, ``AgglomerativeClustering`` and ``Binarize``.

Each fork file is executed as a module with the imports it does not use here (lightning, the
model and task classes, pyannote.pipeline, DiariZen's VBx) replaced by empty stand-ins; the code
that runs is the fork's.
"""

from __future__ import annotations

import sys
import types
from contextlib import contextmanager

FORK = "pyannote-audio/pyannote/audio/"


def _stub(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []
    module.__dict__.update(attributes)
    return module


class _Placeholder:
    def __init__(self, *args, **kwargs):
        pass


@contextmanager
def _stubbed(modules: dict):
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _run(source: str, name: str, path: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = path
    exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 - the fork's file
    return module


def load_fork(repo) -> types.SimpleNamespace:
    """The fork's functions, loaded from ``repo`` at the pinned commit."""
    from diarizen_reference import diarizen_file

    def read(name):
        return diarizen_file(repo, FORK + name)

    placeholders = {
        "pyannote.audio": _stub("pyannote.audio"),
        "pyannote.audio.core": _stub("pyannote.audio.core"),
        "pyannote.audio.core.io": _stub("pyannote.audio.core.io", AudioFile=object),
        "pyannote.audio.core.model": _stub("pyannote.audio.core.model", Model=object,
                                           Specifications=object),
        "pyannote.audio.core.task": _stub("pyannote.audio.core.task", Resolution=object),
        "pyannote.audio.utils": _stub("pyannote.audio.utils"),
        "pyannote.audio.utils.multi_task": _stub("pyannote.audio.utils.multi_task",
                                                 map_with_specifications=None),
        "pyannote.audio.utils.powerset": _stub("pyannote.audio.utils.powerset", Powerset=None),
        "pyannote.audio.utils.reproducibility": _stub("pyannote.audio.utils.reproducibility",
                                                      fix_reproducibility=None),
        "pyannote.audio.utils.permutation": _stub("pyannote.audio.utils.permutation",
                                                  permutate=None),
        "pyannote.audio.pipelines": _stub("pyannote.audio.pipelines"),
        "pyannote.audio.pipelines.utils": _stub("pyannote.audio.pipelines.utils",
                                                oracle_segmentation=None),
        "pytorch_lightning": _stub("pytorch_lightning"),
        "pytorch_lightning.utilities": _stub("pytorch_lightning.utilities"),
        "pytorch_lightning.utilities.memory": _stub("pytorch_lightning.utilities.memory",
                                                    is_oom_error=None),
        "pyannote.pipeline": _stub("pyannote.pipeline", Pipeline=_Placeholder),
        "pyannote.pipeline.parameter": _stub("pyannote.pipeline.parameter",
                                             Categorical=_Placeholder, Integer=_Placeholder,
                                             Uniform=_Placeholder),
        "diarizen": _stub("diarizen"),
        "diarizen.clustering": _stub("diarizen.clustering"),
        "diarizen.clustering.VBx": _stub("diarizen.clustering.VBx", vbx_setup=None,
                                         cluster_vbx=None),
    }
    import numpy

    # the fork was written for numpy 1 (``np.NaN`` as a default argument): numpy 2's name
    # for the same value while its files are executed
    had_nan = "NaN" in numpy.__dict__
    numpy.NaN = numpy.nan
    try:
        with _stubbed(placeholders):
            return _load(read)
    finally:
        if not had_nan:
            del numpy.NaN


class _StableArgsort:
    """numpy, with ``argsort`` stable by default."""

    def __getattr__(self, name):
        import numpy

        return getattr(numpy, name)

    @staticmethod
    def argsort(a, axis=-1, kind=None, order=None):
        import numpy

        return numpy.argsort(a, axis=axis, kind=kind or "stable", order=order)


def _load(read) -> types.SimpleNamespace:
    signal = _run(read("utils/signal.py"), "fork_signal", FORK + "utils/signal.py")
    sys.modules["pyannote.audio.utils.signal"] = signal
    inference = _run(read("core/inference.py"), "fork_inference",
                     FORK + "core/inference.py")
    sys.modules["pyannote.audio.core.inference"] = inference
    diarization = _run(read("pipelines/utils/diarization.py"), "fork_diarization",
                       FORK + "pipelines/utils/diarization.py")
    clustering = _run(read("pipelines/clustering.py"), "fork_clustering",
                      FORK + "pipelines/clustering.py")
    receptive_field = _run(read("utils/receptive_field.py"), "fork_receptive_field",
                           FORK + "utils/receptive_field.py")
    sys.modules.pop("pyannote.audio.utils.signal", None)
    sys.modules.pop("pyannote.audio.core.inference", None)
    # to_diarization ranks speakers with np.argsort's default sort, whose order of tied values
    # depends on the CPU (AVX-512 numpy: no fixed order); ties are taken in the stable order
    # (the lower speaker index first), as generic numpy sorts fewer than 17 values
    diarization.np = _StableArgsort()
    return types.SimpleNamespace(
        Binarize=signal.Binarize, Inference=inference.Inference,
        SpeakerDiarizationMixin=diarization.SpeakerDiarizationMixin,
        AgglomerativeClustering=clustering.AgglomerativeClustering,
        receptive_field=receptive_field,
    )


def fork_diarize(fork, binary, embeddings, threshold=0.7, min_cluster_size=30,
                 max_speakers=20, chunk_step=0.8, chunk_duration=8.0):
    """``diarize_session`` (recipes/diar_ssl_pruning/infer_avg.py 44-97) after segmentation
    (``binary``: hard, median-filtered local activity [C, F, 4]) and embedding extraction, with
    the fork's functions; the model's frames are DiariZen's WavLM receptive field
    (core/model.py 181-194 with model_wavlm_conformer.py 126-177)."""
    import numpy as np
    from pyannote.core import SlidingWindow, SlidingWindowFeature

    rf = fork.receptive_field
    kernels, strides = [10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2]
    size = rf.multi_conv_receptive_field_size(1, kernel_size=kernels, stride=strides,
                                              dilation=[1] * 7)
    step = rf.multi_conv_receptive_field_size(2, kernel_size=kernels, stride=strides,
                                              dilation=[1] * 7) - size
    centre = rf.multi_conv_receptive_field_center(0, kernel_size=kernels, stride=strides,
                                                  padding=[0] * 7, dilation=[1] * 7)
    frames = SlidingWindow(start=(centre - (size - 1) / 2) / 16000, duration=size / 16000,
                           step=step / 16000)
    chunks = SlidingWindow(start=0.0, duration=chunk_duration, step=chunk_step)
    segmentations = SlidingWindowFeature(binary.astype(np.float32), chunks)
    mixin = fork.SpeakerDiarizationMixin
    count = mixin.speaker_count(segmentations, frames, warm_up=(0.0, 0.0))
    clustering = fork.AgglomerativeClustering(metric="cosine")
    clustering.method, clustering.threshold = "centroid", threshold
    clustering.min_cluster_size = min_cluster_size
    hard, _, _ = clustering(embeddings=embeddings, segmentations=segmentations,
                            min_clusters=1, max_clusters=max_speakers)
    count.data = np.minimum(count.data, max_speakers).astype(np.int8)
    hard[np.sum(binary, axis=1) == 0] = -2
    # SpeakerDiarization.reconstruct (pa/pipelines/speaker_diarization.py 400-425)
    num_clusters = np.max(hard) + 1
    clustered = np.nan * np.zeros((*binary.shape[:2], num_clusters))
    for c, (cluster, segmentation) in enumerate(zip(hard, binary)):
        for k in np.unique(cluster):
            if k != -2:
                clustered[c, :, k] = np.max(segmentation[:, cluster == k], axis=1)
    discrete, _ = mixin.to_diarization(SlidingWindowFeature(clustered, chunks), count)
    annotation = fork.Binarize(onset=0.5, offset=0.5, min_duration_on=0.0,
                               min_duration_off=0.0)(discrete)
    segments = [(s.start, s.end, int(label))
                for s, _, label in annotation.itertracks(yield_label=True)]
    return sorted(segments, key=lambda s: (s[0], s[2])), count, hard
