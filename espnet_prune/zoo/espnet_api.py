"""ESPnet's ``DiarizeSpeech`` interface for this plugin's models.

ESPnet's own ``espnet2.bin.diar_inference.DiarizeSpeech`` builds its model with
``DiarizationTask`` (an EEND model on ESPnet's frontends), which cannot build ours (the
powerset model of :mod:`espnet_prune.tasks.diar`); it fails on our ``config.yaml`` with
``'Namespace' object has no attribute 'input_size'``. This class has its constructor,
``from_pretrained(model_tag, **kwargs)`` and ``__call__(speech, fs)`` → ``spk_prediction``
``(batch, frames, num_spk)``, so code written against ESPnet's class runs our models; behind
it is :class:`espnet_prune.zoo.pretrained.Diarizer` (the whole pipeline: windows, speaker
embeddings, clustering), whose speaker activity is returned as 0/1 per model frame (frame
``i`` centred at ``(i * frame_shift + frame_length / 2) / fs``).
"""

from __future__ import annotations

import numpy as np

from espnet_prune.errors import DataError
from espnet_prune.zoo.pretrained import Diarizer


class DiarizeSpeech:
    """``DiarizeSpeech(train_config, model_file, num_spk=None, device="cpu")``: see the
    module docstring. ESPnet's enhancement and segmenting options have no meaning here and
    are accepted and ignored, so calls written for ESPnet's class keep working."""

    def __init__(self, train_config=None, model_file=None, num_spk: int | None = None,
                 device: str = "cpu", inference_config: str | None = None,
                 show_progressbar: bool = False, **ignored):
        if train_config is None or model_file is None:
            raise DataError("DiarizeSpeech needs train_config and model_file (or use "
                            "DiarizeSpeech.from_pretrained(model_tag))")
        self.diarizer = Diarizer(str(train_config), str(model_file), inference_config, device,
                                 progress=show_progressbar)
        self.num_spk = num_spk

    @staticmethod
    def from_pretrained(model_tag: str | None = None, **kwargs) -> DiarizeSpeech:
        """As ESPnet's: ``model_tag`` is an exp dir, a ``diar_pack`` archive or folder, or an
        ESPnet model zoo tag; without it, ``kwargs`` name the files."""
        if model_tag is not None:
            from espnet_prune.zoo.pretrained import pretrained_files

            files = pretrained_files(model_tag, kwargs.pop("cache_dir", None))
            if kwargs.get("inference_config") is not None:
                files.pop("inference_config")
            kwargs.update(files)
        return DiarizeSpeech(**kwargs)

    def __call__(self, speech, fs: int = 16000) -> np.ndarray:
        """``speech`` ``[batch, samples]`` (or ``[samples]``) at ``fs`` → speaker activity
        ``[batch, frames, num_spk]`` (0/1, at the model's frame rate and ``fs``)."""
        if hasattr(speech, "detach"):
            speech = speech.detach().cpu().numpy()
        speech = np.asarray(speech)
        if speech.ndim == 1:
            speech = speech[None]
        if speech.ndim != 2:
            raise DataError(f"expected speech [batch, samples], got shape {speech.shape}")
        pipeline = self.diarizer.pipeline
        rate = self.diarizer.sample_rate
        frames = max(0, (speech.shape[1] * rate // fs - pipeline.frame_length)
                     // pipeline.frame_shift + 1)
        centres = (np.arange(frames) * pipeline.frame_shift + pipeline.frame_length / 2) / rate
        activities = []
        for row in speech:
            annotation = self.diarizer(row, sample_rate=fs, num_speakers=self.num_spk)
            labels = sorted(annotation.labels())
            activity = np.zeros((frames, len(labels)), dtype=np.float32)
            for segment, _, label in annotation.itertracks(yield_label=True):
                inside = (centres >= segment.start) & (centres < segment.end)
                activity[inside, labels.index(label)] = 1.0
            activities.append(activity)
        width = self.num_spk or max([a.shape[1] for a in activities] + [1])
        out = np.zeros((len(activities), frames, width), dtype=np.float32)
        for b, activity in enumerate(activities):
            out[b, :, : activity.shape[1]] = activity[:, :width]
        return out
