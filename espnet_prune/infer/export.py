"""The segmentation model as an ONNX graph, and an onnxruntime backend for the pipeline.

The graph maps ``speech [B, T]`` (float32, zero-padded windows) and ``lengths [B]`` (int64) to
the powerset log-probabilities ``log_probs [B, F, C]``: what ``model.predict`` returns, batch
and time axes dynamic (``F`` follows the longest window of the batch, as in PyTorch).

Exporter: the TorchScript tracer (``torch.onnx.export(dynamo=False)``). ESPnet's Conformer is
written for it (``make_pad_mask``'s traceable path), and the frame count of a batch depends on
its ``lengths`` (the batch is trimmed to its longest window before the Conformer, whose
convolution sees the padding frames): the tracer records that as a dynamic ``Slice``, while
``torch.export`` (``dynamo=True``) stops at it as a data-dependent shape. The few value-dependent
branches of WavLM take their shape-generic path while a graph is traced
(:func:`espnet_prune.wavlm.components.is_exporting`).

The file carries what the pipeline needs besides the graph, as ONNX metadata
(:data:`METADATA_KEYS`): frame geometry, powerset sizes and class count; so ``diar_inference
--backend onnxruntime`` needs no train config. It also carries the model's identity
(:data:`FINGERPRINT_KEYS`): a SHA-256 of its weights and one of the config keys that define it
(:data:`espnet_prune.diar.build.MODEL_CONFIG_KEYS`); a train config given at inference must
have the same config fingerprint (an export of another model, e.g. the teacher's, run with the
pruned model's config is refused). The graph's inputs and output are checked against the
powerset and frame geometry when the session opens and on every batch. ``int8`` is
onnxruntime's dynamic quantisation of the weights of the matrix products (activations
quantised on the fly).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import numpy as np

from espnet_prune.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

INPUT_NAMES = ("speech", "lengths")
OUTPUT_NAME = "log_probs"
HIDDEN_NAME = "hidden"  # the Conformer output [B, F, d], only in graphs exported with_hidden
METADATA_PREFIX = "espnet_prune."
METADATA_KEYS = ("frame_shift", "frame_length", "max_speakers_per_chunk",
                 "max_speakers_per_frame", "num_classes")
FINGERPRINT_KEYS = ("weights_sha256", "config_sha256")  # config_sha256 "" when not known
INPUT_TYPES = {"speech": ("tensor(float)", 2), "lengths": ("tensor(int64)", 1)}
OPSET = 17
QUANTIZE_CHOICES = ("none", "int8")
# ops whose weights int8 quantises: the Linear layers (MatMul; Gemm when 2-D); the convolutions
# stay fp32 (ConvInteger is slower than fp32 Conv in onnxruntime's CPU provider)
INT8_OP_TYPES = ("MatMul", "Gemm")
ORT_HINT = "pip install onnxruntime (tools/requirements.txt pins the tested version)"


class _Hidden:
    """Forward hook keeping the Conformer output for the graph's second output."""

    def __init__(self):
        self.value = None

    def __call__(self, module, inputs, output):
        self.value = output[0]


def _segmentation_graph(model, hidden: _Hidden | None):
    import torch

    class SegmentationGraph(torch.nn.Module):
        """``model.predict`` with (optionally) the Conformer output as a second output."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, speech, lengths):
            log_probs = self.model.predict(speech, lengths)
            return log_probs if hidden is None else (log_probs, hidden.value)

    # eval before export: the exporter restores the wrapper's mode afterwards, to all children
    return SegmentationGraph().eval()


def weights_fingerprint(model) -> str:
    """SHA-256 of the model's state dict (names, dtypes, shapes and bytes, in name order)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        if flat.numel():
            digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def config_fingerprint(conf: dict) -> str:
    """SHA-256 of the keys of a training config that define the model (canonical JSON)."""
    import hashlib
    import json

    from espnet_prune.diar.build import MODEL_CONFIG_KEYS

    canonical = json.dumps({key: conf.get(key) for key in MODEL_CONFIG_KEYS}, sort_keys=True,
                           default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def model_metadata(model, train_conf: dict | None = None) -> dict[str, str]:
    """The ONNX metadata of ``model``: frame geometry, powerset sizes and class count, and its
    fingerprints (the config's only with ``train_conf``, the mapping it was built from)."""
    powerset = model.powerset
    values = {"frame_shift": model.frame_shift, "frame_length": model.frame_length,
              "max_speakers_per_chunk": powerset.max_speakers_per_chunk,
              "max_speakers_per_frame": powerset.max_speakers_per_frame,
              "num_classes": powerset.num_classes}
    metadata = {METADATA_PREFIX + key: str(int(values[key])) for key in METADATA_KEYS}
    metadata[METADATA_PREFIX + "weights_sha256"] = weights_fingerprint(model)
    metadata[METADATA_PREFIX + "config_sha256"] = (
        config_fingerprint(train_conf) if train_conf is not None else "")
    return metadata


def example_batch(model, seconds: float = 4.0, sample_rate: int = 16000, seed: int = 0):
    """Two windows, the second one shorter (a partial last window), as torch tensors."""
    import torch

    samples = int(seconds * sample_rate)
    generator = torch.Generator().manual_seed(seed)
    speech = torch.randn(2, samples, generator=generator) * 0.1
    lengths = torch.tensor([samples, samples - 37 * model.frame_shift - 5], dtype=torch.long)
    speech[1, int(lengths[1]):] = 0.0
    return speech, lengths


def export_onnx(model, path, with_hidden: bool = False, opset: int = OPSET,
                train_conf: dict | None = None) -> Path:
    """Write ``model`` (a :class:`PowersetDiarizationModel`, on CPU) as an fp32 ONNX graph with
    dynamic batch and time axes and the :func:`model_metadata` (``train_conf``: the training
    config mapping it was built from, for the config fingerprint); returns the path. Only the
    ``wavlm_prunable`` frontend is traced shape-generically (fbank loops over the batch)."""
    from espnet_prune.diar.frontends import WavLMPrunableFrontend

    if not isinstance(model.frontend, WavLMPrunableFrontend):
        raise ConfigError(f"{path}: ONNX export supports the wavlm_prunable frontend only, "
                          f"not {type(model.frontend).__name__}")
    model = model.cpu().eval()
    hidden = _Hidden() if with_hidden else None
    hook = model.encoder.register_forward_hook(hidden) if with_hidden else None
    try:
        _export(model, _segmentation_graph(model, hidden), path, with_hidden, opset,
                model_metadata(model, train_conf))
    finally:
        if hook is not None:
            hook.remove()
    return Path(path)


def _export(model, graph, path, with_hidden: bool, opset: int, metadata: dict) -> None:
    import onnx
    import torch

    from espnet_prune.utils.io import atomic_write

    speech, lengths = example_batch(model)
    outputs = [OUTPUT_NAME] + ([HIDDEN_NAME] if with_hidden else [])
    axes = {"speech": {0: "batch", 1: "samples"}, "lengths": {0: "batch"}}
    axes.update({name: {0: "batch", 1: "frames"} for name in outputs})
    with atomic_write(path, make_parents=True) as tmp, warnings.catch_warnings():
        # the tracer warns at every tensor-to-Python conversion; the ones left in the model
        # read parameters or shapes (fixed by the graph), which tests/export checks cover
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(graph, (speech, lengths), str(tmp), dynamo=False,
                              input_names=list(INPUT_NAMES), output_names=outputs,
                              dynamic_axes=axes, opset_version=opset)
        proto = onnx.load(str(tmp))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))


@contextlib.contextmanager
def _without_preprocess_advice():
    """onnxruntime logs "Please consider to run pre-processing before quantization" on the
    root logger on every call; its shape inference and graph fusions are what onnxruntime's
    session applies at load time anyway (graph optimisation level ALL), so the line is noise
    here. Every other message passes."""

    def keep(record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def quantize_int8(source, output) -> Path:
    """onnxruntime's dynamic int8 quantisation of ``source`` (signed weights, per tensor),
    metadata kept; returns ``output``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from espnet_prune.utils.io import atomic_write

    metadata = {p.key: p.value for p in onnx.load(str(source), load_external_data=False)
                .metadata_props}
    with atomic_write(output, make_parents=True) as tmp, _without_preprocess_advice():
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8,
                         op_types_to_quantize=list(INT8_OP_TYPES))
        proto = onnx.load(str(tmp))
        present = {p.key for p in proto.metadata_props}
        for key, value in metadata.items():
            if key not in present:
                entry = proto.metadata_props.add()
                entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))
    return Path(output)


def export_quantized(model, output, quantize: str = "none", with_hidden: bool = False,
                     train_conf: dict | None = None) -> Path:
    """:func:`export_onnx`, then with ``quantize="int8"`` :func:`quantize_int8` of it."""
    if quantize not in QUANTIZE_CHOICES:
        raise ConfigError(f"unknown quantisation {quantize!r}; choose from {QUANTIZE_CHOICES}")
    if quantize == "none":
        return export_onnx(model, output, with_hidden=with_hidden, train_conf=train_conf)
    import tempfile

    from espnet_prune.utils.io import check_output_file

    check_output_file(output, make_parents=True)
    with tempfile.TemporaryDirectory() as folder:
        try:
            fp32 = export_onnx(model, Path(folder) / "fp32.onnx", with_hidden=with_hidden,
                               train_conf=train_conf)
        except ConfigError as exc:  # the temporary file's write error: name the output
            raise ConfigError(f"{output}: {exc}") from None
        return quantize_int8(fp32, output)


def export_model_file(model_file: str, train_config: str, output: str,
                      quantize: str = "none") -> dict:
    """``diar_export``: the trained model (train config + model file) → ``output`` (.onnx);
    returns the largest |log-prob| difference of the written graph against PyTorch on an
    example batch (one full and one partial window)."""
    from espnet_prune.diar.build import build_diarization_model
    from espnet_prune.diar.model_file import load_trained_model, read_train_config
    from espnet_prune.utils.io import check_output_file

    if quantize not in QUANTIZE_CHOICES:
        raise ConfigError(f"unknown quantisation {quantize!r}; choose from {QUANTIZE_CHOICES}")
    _check_onnxruntime(output)
    check_output_file(output, make_parents=True)  # before the model is loaded and traced
    model = load_trained_model(build_diarization_model, train_config, model_file, "cpu")
    export_quantized(model, output, quantize, train_conf=read_train_config(train_config))
    speech, lengths = example_batch(model, seconds=3.0)
    import torch

    with torch.inference_mode():
        reference = model.predict(speech, lengths).numpy()
    segmentation, _ = onnx_segmentation(output)
    difference = float(np.abs(segmentation(speech.numpy(), lengths.numpy()) - reference).max())
    report = {"output": str(output), "quantize": quantize, "max_abs_log_prob_diff": difference}
    print(f"wrote {output} ({quantize}); max |log-prob difference| to PyTorch on an example "
          f"batch: {difference:.2e}")
    return report


def _check_onnxruntime(path) -> None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ConfigError(f"{path}: the onnxruntime backend needs the onnxruntime package "
                          f"({ORT_HINT})") from None


def onnx_session(path, num_threads: int | None = None):
    """An onnxruntime CPU session of ``path`` and its metadata (ints by :data:`METADATA_KEYS`);
    a missing package, a file that is not an ONNX model or one without our metadata is one
    error line naming the file."""
    _check_onnxruntime(path)
    import onnxruntime as ort

    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"{file}: ONNX model does not exist")
    options = ort.SessionOptions()
    # onnxruntime's CPU arena keeps the largest forward's buffers for the life of the session
    # (8 windows of 8 s, pruned Base+ int8: ~670 MB held, on top of the embedding stage's
    # memory). Without it the buffers go back to the system after each run: measured on a
    # 120 s pipeline run, peak RSS 1759 -> 1287 MB, for ~6 % more CPU per forward (BENCHMARKS.md).
    options.enable_cpu_mem_arena = False
    if num_threads is not None:
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own (pybind) classes: InvalidProtobuf, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{file}: not a readable ONNX model ({first[:200]})") from None
    stored = session.get_modelmeta().custom_metadata_map
    missing = [key for key in METADATA_KEYS + FINGERPRINT_KEYS
               if METADATA_PREFIX + key not in stored]
    if missing:
        raise CheckpointError(f"{file}: ONNX model without the metadata {missing} "
                              "(export it again with diar_export)")
    try:
        meta = {key: int(stored[METADATA_PREFIX + key]) for key in METADATA_KEYS}
    except ValueError:
        raise CheckpointError(f"{file}: ONNX metadata {METADATA_KEYS} must be whole numbers "
                              "(export it again with diar_export)") from None
    meta.update({key: stored[METADATA_PREFIX + key] for key in FINGERPRINT_KEYS})
    check_graph_signature(session, meta, file)
    return session, meta


def check_graph_signature(session, meta: dict, file) -> None:
    """The graph's inputs (names, element types, ranks) and output (rank, class count) against
    :data:`INPUT_TYPES` and the powerset of the metadata; one CheckpointError line naming
    ``file`` on a mismatch."""
    from espnet_prune.diar.powerset import Powerset

    names = [i.name for i in session.get_inputs()]
    if names != list(INPUT_NAMES):
        raise CheckpointError(f"{file}: ONNX inputs {names}, expected {list(INPUT_NAMES)}")
    for node in session.get_inputs():
        kind, rank = INPUT_TYPES[node.name]
        if node.type != kind or len(node.shape) != rank:
            raise CheckpointError(f"{file}: ONNX input {node.name} is {node.type} of rank "
                                  f"{len(node.shape)}, expected {kind} of rank {rank}")
    outputs = {o.name: o for o in session.get_outputs()}
    if OUTPUT_NAME not in outputs:
        raise CheckpointError(f"{file}: ONNX outputs {sorted(outputs)} lack {OUTPUT_NAME!r}")
    shape = outputs[OUTPUT_NAME].shape
    try:
        classes = Powerset(meta["max_speakers_per_chunk"], meta["max_speakers_per_frame"]
                           ).num_classes
    except Exception:  # an impossible powerset (e.g. 2 per frame of 1 speaker)
        classes = None
    if classes is None or classes != meta["num_classes"]:
        raise CheckpointError(
            f"{file}: ONNX metadata powerset ({meta['max_speakers_per_chunk']} speakers, "
            f"{meta['max_speakers_per_frame']} per frame) does not have its num_classes "
            f"{meta['num_classes']}")
    if len(shape) != 3 or (isinstance(shape[2], int) and shape[2] != classes):
        raise CheckpointError(f"{file}: ONNX output {OUTPUT_NAME} has shape {shape}, expected "
                              f"[batch, frames, {classes}] (the powerset's classes)")


class OnnxSegmenter:
    """An exported model run by onnxruntime on CPU: what the pipeline takes from a model
    (:meth:`segmentation`, :meth:`to_multilabel`, ``frame_shift``, ``frame_length``)."""

    def __init__(self, path, num_threads: int | None = None):
        from espnet_prune.diar.powerset import Powerset

        self.path = Path(path)
        self.session, self.metadata = onnx_session(path, num_threads)
        meta = self.metadata
        self.frame_shift, self.frame_length = meta["frame_shift"], meta["frame_length"]
        self.powerset = Powerset(meta["max_speakers_per_chunk"], meta["max_speakers_per_frame"])

    def segmentation(self, batch: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        feed = {"speech": np.ascontiguousarray(batch, dtype=np.float32),
                "lengths": np.ascontiguousarray(lengths, dtype=np.int64)}
        log_probs = self.session.run([OUTPUT_NAME], feed)[0]
        self.check_output(log_probs, lengths)
        return log_probs

    def check_output(self, log_probs: np.ndarray, lengths: np.ndarray) -> None:
        """The graph's answer has the shape its metadata promises: one row per window, the
        model frames of the longest window (:func:`espnet_prune.utils.frames.num_frames`), one
        column per powerset class; a graph of another frame geometry would otherwise give
        speakers on the wrong time grid without a word."""
        from espnet_prune.utils.frames import num_frames

        expected = (len(lengths), num_frames(int(np.max(lengths)), self.frame_shift,
                                             self.frame_length), self.powerset.num_classes)
        if tuple(np.shape(log_probs)) != expected:
            raise CheckpointError(
                f"{self.path}: ONNX output {OUTPUT_NAME} has shape {tuple(np.shape(log_probs))}"
                f" for {len(lengths)} windows of up to {int(np.max(lengths))} samples; its "
                f"metadata (frame shift {self.frame_shift}, length {self.frame_length}, "
                f"{self.powerset.num_classes} classes) promises {expected}: not the graph "
                "this metadata was written for")

    def to_multilabel(self, log_probs: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.powerset.to_multilabel(torch.from_numpy(log_probs)).numpy()


def onnx_segmentation(path, num_threads: int | None = None):
    """``(segmentation, to_multilabel)`` of an exported model, like
    :func:`espnet_prune.infer.run.model_segmentation`: ``segmentation(batch [B, T] float32,
    lengths [B] int64) -> log_probs [B, F, C]`` runs the graph with onnxruntime on CPU
    (``num_threads`` intra-op threads; onnxruntime's default without)."""
    segmenter = OnnxSegmenter(path, num_threads)
    return segmenter.segmentation, segmenter.to_multilabel


def check_train_config(segmenter: OnnxSegmenter, train_config) -> None:
    """A train config given with an ONNX model must be the one it was exported from (the same
    config fingerprint, when the file has one) and describe the same frame geometry and
    powerset as the file's metadata (a mismatch is one line naming both files)."""
    from espnet_prune.diar.frontends import frame_geometry
    from espnet_prune.diar.model_file import read_train_config

    conf = read_train_config(train_config)  # a YAML mapping, with its one-line errors
    stored_fingerprint = segmenter.metadata.get("config_sha256")
    if stored_fingerprint and stored_fingerprint != config_fingerprint(conf):
        raise ConfigError(
            f"{segmenter.path}: exported from another model than {train_config} describes "
            f"(config fingerprint {stored_fingerprint[:12]} in the file, "
            f"{config_fingerprint(conf)[:12]} of the config): not an export of this model; "
            "--backend onnxruntime needs no --train_config")
    model_conf = conf.get("model_conf") or {}
    expected = {
        "frame geometry": frame_geometry(conf.get("frontend", ""), conf.get("frontend_conf")),
        "powerset": (model_conf.get("max_speakers_per_chunk", 4),
                     model_conf.get("max_speakers_per_frame", 2)),
    }
    stored = {
        "frame geometry": (segmenter.frame_shift, segmenter.frame_length),
        "powerset": (segmenter.powerset.max_speakers_per_chunk,
                     segmenter.powerset.max_speakers_per_frame),
    }
    for name, value in expected.items():
        if tuple(value) != tuple(stored[name]):
            raise ConfigError(f"{segmenter.path}: {name} {stored[name]} differs from "
                              f"{train_config}'s {tuple(value)}: not an export of this model")
