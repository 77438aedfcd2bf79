"""The one frame count of the project: how many model frames a number of samples gives.

A frontend (the WavLM CNN, the fbank) slides a window of ``frame_length`` samples by
``frame_shift`` without padding, so ``T`` samples give ``floor((T - frame_length) /
frame_shift) + 1`` frames, none when ``T < frame_length``. The training data (label frames),
the frontends (output lengths), the inference pipeline (a window's valid frames), the oracle
segmentation and the cost estimate all ask :func:`num_frames`, so they cannot disagree.
"""

from __future__ import annotations


def num_frames(num_samples, frame_shift: int, frame_length: int):
    """Frames in ``num_samples`` samples: an ``int`` for an int, elementwise for a NumPy array
    or a torch tensor (whose ops are kept traceable for the ONNX export)."""
    if hasattr(num_samples, "div") and hasattr(num_samples, "clamp"):  # a torch tensor
        frames = (num_samples - frame_length).div(frame_shift, rounding_mode="floor") + 1
        return frames.clamp(0)
    frames = (num_samples - frame_length) // frame_shift + 1
    if hasattr(frames, "clip"):  # a NumPy array or scalar
        return frames.clip(0)
    return max(int(frames), 0)
