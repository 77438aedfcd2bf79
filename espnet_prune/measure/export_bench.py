"""Speed and fidelity of the exported segmentation model: PyTorch fp32, ONNX fp32, ONNX int8
(onnxruntime dynamic quantisation) and, for comparison, PyTorch int8 (``torch.ao`` dynamic
quantisation of the Linear layers). A measurement script, not a test::

    python -m espnet_prune.bin.export_bench --preset base_plus_s80 --threads 2 \\
        [--model_file EXP/valid.loss.ave.pth --train_config EXP/config.yaml --wav_scp WAV_SCP]

Speed: the model (random weights; the WavLM preset's shape, the default Conformer) on one
batch of ``--batch_size`` windows of ``--window`` s synthetic speech-like audio (one window
partial), ``--threads`` threads each; the backends take turns (warm-up, then ``--runs`` timed
rounds) so that the machine's load hits them alike. Fidelity, int8 against fp32 on the same
batch: the cosine of the Conformer output (the hidden state the powerset head reads) per valid
frame, the largest |log-prob| difference and the frame agreement of the argmax class; with a
trained model (``--model_file``...) also on windows of its recordings. Prints a JSON document,
then a table.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

RATE = 16000


def example_windows(window: float, batch_size: int, audio: np.ndarray | None = None):
    """``batch_size`` windows of ``window`` s (the last one 60 % full, as the last window of a
    recording), from ``audio`` (synthetic speech-like audio without)."""
    from espnet_prune.measure.bench import synthetic_recording

    samples = int(window * RATE)
    if audio is None:
        audio, _ = synthetic_recording(window * batch_size + 1.0)
    step = max(1, (len(audio) - samples) // max(1, batch_size - 1))
    speech = np.zeros((batch_size, samples), dtype=np.float32)
    lengths = np.full(batch_size, samples, dtype=np.int64)
    lengths[-1] = int(0.6 * samples)
    for row in range(batch_size):
        piece = audio[row * step : row * step + lengths[row]]
        speech[row, : len(piece)] = piece
        lengths[row] = len(piece)
    return speech, lengths


def torch_runner(model, threads: int):
    """``(speech, lengths) -> (log_probs, hidden)`` of a PyTorch model on ``threads``."""
    import torch

    hidden = {}
    model.encoder.register_forward_hook(lambda m, i, o: hidden.update(value=o[0]))

    def run(speech, lengths):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            log_probs = model.predict(torch.from_numpy(speech), torch.from_numpy(lengths))
        return log_probs.numpy(), hidden["value"].numpy()

    return run


def onnx_runner(path, threads: int):
    """``(speech, lengths) -> (log_probs, hidden)`` of an export ``with_hidden``."""
    from espnet_prune.infer.export import HIDDEN_NAME, OUTPUT_NAME, onnx_session

    session, _ = onnx_session(path, threads)

    def run(speech, lengths):
        return tuple(session.run([OUTPUT_NAME, HIDDEN_NAME],
                                 {"speech": speech, "lengths": lengths}))

    return run


def build_backends(model, folder: Path, threads: int) -> dict:
    """{name: runner} for pytorch_fp32, onnx_fp32, onnx_int8, pytorch_int8."""
    import torch

    from espnet_prune.infer.export import export_onnx, quantize_int8

    fp32 = export_onnx(model, folder / "fp32.onnx", with_hidden=True)
    int8 = quantize_int8(fp32, folder / "int8.onnx")
    torch_int8 = torch.ao.quantization.quantize_dynamic(
        copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
    return {"pytorch_fp32": torch_runner(model, threads),
            "onnx_fp32": onnx_runner(fp32, threads),
            "onnx_int8": onnx_runner(int8, threads),
            "pytorch_int8": torch_runner(torch_int8, threads),
            "_sizes_mb": {"onnx_fp32": fp32.stat().st_size / 2**20,
                          "onnx_int8": int8.stat().st_size / 2**20}}


def fidelity(outputs: dict, lengths: np.ndarray, frames_of) -> dict:
    """Each backend against its fp32 reference (pytorch_int8 and onnx_* against pytorch_fp32)
    over the valid frames: hidden-state cosine (mean, min), max |log-prob| difference, argmax
    agreement."""
    reference_log_probs, reference_hidden = outputs["pytorch_fp32"]
    valid = np.arange(reference_log_probs.shape[1])[None, :] < frames_of(lengths)[:, None]
    result = {}
    for name, (log_probs, hidden) in outputs.items():
        a, b = hidden[valid].astype(np.float64), reference_hidden[valid].astype(np.float64)
        cosine = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
        agree = log_probs.argmax(-1)[valid] == reference_log_probs.argmax(-1)[valid]
        result[name] = {
            "hidden_cosine_mean": float(cosine.mean()), "hidden_cosine_min": float(cosine.min()),
            "max_abs_log_prob_diff": float(np.abs(log_probs - reference_log_probs)[valid].max()),
            "argmax_agreement": float(agree.mean()),
        }
    return result


def speed(backends: dict, speech, lengths, runs: int, warmup: int) -> dict:
    """Median seconds per batch per backend, backends taking turns."""
    names = [n for n in backends if not n.startswith("_")]
    times = {name: [] for name in names}
    for round_index in range(warmup + runs):
        for name in names:
            start = time.perf_counter()
            backends[name](speech, lengths)
            if round_index >= warmup:
                times[name].append(time.perf_counter() - start)
    audio_seconds = float(lengths.sum()) / RATE
    return {name: {"median_s": statistics.median(t), "times": [round(x, 4) for x in t],
                   "seconds_per_audio_second": statistics.median(t) / audio_seconds}
            for name, t in times.items()}


def frames_function(model):
    from espnet_prune.utils.frames import num_frames

    def frames_of(lengths):
        import torch

        return num_frames(torch.from_numpy(lengths), model.frame_shift,
                                   model.frame_length).numpy()

    return frames_of


def measure(preset: str = "base_plus_s80", threads: int = 2, window: float = 8.0,
            batch_size: int = 8, runs: int = 5, warmup: int = 1, model_file: str | None = None,
            train_config: str | None = None, wav_scp: str | None = None) -> dict:
    import torch

    from espnet_prune.measure.bench import build_model

    torch.manual_seed(0)
    result = {"config": {"preset": preset, "threads": threads, "window": window,
                         "batch_size": batch_size, "runs": runs, "warmup": warmup,
                         "hidden_state": "Conformer output (encoder.after_norm), valid frames"}}
    speech, lengths = example_windows(window, batch_size)
    with tempfile.TemporaryDirectory() as folder:
        model = build_model(preset, {})
        backends = build_backends(model, Path(folder), threads)
        outputs = {n: run(speech, lengths) for n, run in backends.items() if n[0] != "_"}
        result["sizes_mb"] = backends["_sizes_mb"]
        result["fidelity_random_weights"] = fidelity(outputs, lengths, frames_function(model))
        result["speed"] = speed(backends, speech, lengths, runs, warmup)
    if model_file is not None:
        import soundfile as sf

        from espnet_prune.infer.run import load_model
        from espnet_prune.utils.datadir import read_scp

        trained = load_model(train_config, model_file, "cpu")
        audio = np.concatenate([sf.read(path, dtype="float32")[0]
                                for path in read_scp(wav_scp).values()])
        with tempfile.TemporaryDirectory() as folder:
            backends = build_backends(trained, Path(folder), threads)
            per_batch = []
            for first in range(0, len(audio) - int(window * RATE) * batch_size,
                               int(window * RATE) * batch_size):
                speech, lengths = example_windows(
                    window, batch_size, audio[first: first + int(window * RATE) * batch_size])
                outputs = {n: run(speech, lengths) for n, run in backends.items()
                           if n[0] != "_"}
                per_batch.append(fidelity(outputs, lengths, frames_function(trained)))
        result["fidelity_trained"] = {
            "model_file": model_file, "batches": len(per_batch),
            **{name: {key: (min if key.endswith("min") else
                            max if key.startswith("max") else statistics.mean)(
                                [b[name][key] for b in per_batch])
                      for key in per_batch[0][name]}
               for name in per_batch[0]}}
    return result


def table(result: dict) -> str:
    lines = ["| backend | s / batch (median) | s per audio s | hidden cos mean (min) | "
             "max abs log-prob diff | argmax agree |", "|---|---|---|---|---|---|"]
    for name, timing in result["speed"].items():
        fid = result["fidelity_random_weights"][name]
        lines.append(f"| {name} | {timing['median_s']:.3f} | "
                     f"{timing['seconds_per_audio_second']:.4f} | "
                     f"{fid['hidden_cosine_mean']:.5f} ({fid['hidden_cosine_min']:.5f}) | "
                     f"{fid['max_abs_log_prob_diff']:.2e} | {fid['argmax_agreement']:.4f} |")
    trained = result.get("fidelity_trained")
    if trained:
        lines += ["", f"trained model {trained['model_file']} ({trained['batches']} batches):",
                  "| backend | hidden cos mean (min) | max abs log-prob diff | argmax agree |",
                  "|---|---|---|---|"]
        for name, fid in trained.items():
            if isinstance(fid, dict):
                lines.append(f"| {name} | {fid['hidden_cosine_mean']:.5f} "
                             f"({fid['hidden_cosine_min']:.5f}) | "
                             f"{fid['max_abs_log_prob_diff']:.2e} | "
                             f"{fid['argmax_agreement']:.4f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base_plus_s80")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--model_file", default=None)
    parser.add_argument("--train_config", default=None)
    parser.add_argument("--wav_scp", default=None)
    parser.add_argument("--json", dest="json_path", default=None, help="also write the JSON here")
    options = vars(parser.parse_args(argv))
    json_path = options.pop("json_path")
    result = measure(**options)
    text = json.dumps(result, indent=1)
    print(text)
    if json_path:
        from espnet_prune.utils.datadir import write_text

        write_text(json_path, text + "\n", make_parents=True)
    print(table(result))


if __name__ == "__main__":
    main()
