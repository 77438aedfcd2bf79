"""s3prl upstream ``wavlm_prunable_local``: the project's (pruned) WavLM checkpoint as an s3prl
upstream, so ``S3PRLUpstream("wavlm_prunable_local", path_or_url=CKPT)`` and ESPnet's
``S3prlFrontend`` can use it.  s3prl is imported only when the upstream is built.
"""

from __future__ import annotations

UPSTREAM_NAME = "wavlm_prunable_local"


def _build_upstream(ckpt, *args, **kwargs):
    import torch
    from s3prl.upstream.interfaces import UpstreamBase
    from torch.nn.utils.rnn import pad_sequence

    from espnet_prune.wavlm import load_wavlm

    class PrunableWavLMUpstream(UpstreamBase):
        """All L+1 hidden states of the project's WavLM (index 0 = input of layer 1)."""

        def __init__(self, ckpt, **kwargs):
            super().__init__(**kwargs)
            self.model = load_wavlm(ckpt)

        def get_downsample_rates(self, key: str) -> int:
            return self.model.config.frame_shift  # the checkpoint's own CNN

        def forward(self, wavs):
            lengths = torch.tensor([len(w) for w in wavs], device=wavs[0].device)
            padded = pad_sequence(wavs, batch_first=True)
            hidden, _ = self.model.extract_features(padded, lengths)
            return {"hidden_states": hidden, "last_hidden_state": hidden[-1]}

    kwargs.pop("refresh", None)
    return PrunableWavLMUpstream(ckpt, **kwargs)


def wavlm_prunable_local(ckpt, *args, **kwargs):
    """s3prl hub entry: ``ckpt`` is an ``espnet_prune.wavlm`` checkpoint (pruned or not)."""
    import os

    from espnet_prune.errors import CheckpointError

    if not os.path.isfile(ckpt):
        raise CheckpointError(f"{ckpt}: no such checkpoint file")
    return _build_upstream(ckpt, *args, **kwargs)


def register_s3prl_upstreams(hub) -> None:
    """Called by :mod:`espnet_prune.registration` right after ``s3prl.hub`` is imported."""
    setattr(hub, UPSTREAM_NAME, wavlm_prunable_local)  # also listed by hub.options()
