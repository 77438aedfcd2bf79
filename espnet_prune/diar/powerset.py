"""Powerset encoding of multi-speaker activity and the permutation-invariant powerset loss.

A frame with at most ``max_speakers_per_frame`` of ``max_speakers_per_chunk`` local speakers
active is one class of a softmax (4 speakers, 2 per frame: the empty set, 4 singles, 6 pairs
= 11 classes), so overlap needs no threshold.  Reference speakers are local to a chunk and
unordered, hence the loss is taken after aligning them with the prediction.

Our own rather than pyannote.audio's ``Powerset``: the same classes in the same order, and the
same ``to_multilabel`` / ``to_powerset`` on hard activity (test/diar/test_powerset_pyannote.py),
but importing it imports pyannote.audio's package, which needs 38 packages beyond our pinned
set (lightning, optuna, opentelemetry, ...: 125 MB) and takes 7 s against 2.3 s for all our
inference modules (measured: espnet_prune/FIDELITY.md, "pyannote.audio pieces").
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F


class Powerset(torch.nn.Module):
    """Mapping between multi-label activity ``[..., K]`` and powerset classes ``[...]``.

    Classes are ordered by size, then lexicographically: ∅, {0}, {1}, ..., {0,1}, {0,2}, ...
    Frames of a reference with more active speakers than ``max_speakers_per_frame`` are mapped
    to the class of the first (lowest-index, i.e. most talkative after sorting) active speakers.
    """

    def __init__(self, max_speakers_per_chunk: int = 4, max_speakers_per_frame: int = 2):
        super().__init__()
        if not 1 <= max_speakers_per_frame <= max_speakers_per_chunk:
            raise ValueError(
                "need 1 <= max_speakers_per_frame <= max_speakers_per_chunk, got "
                f"{max_speakers_per_frame} and {max_speakers_per_chunk}"
            )
        if max_speakers_per_chunk > 8:
            raise ValueError(f"max_speakers_per_chunk={max_speakers_per_chunk} is too large")
        self.max_speakers_per_chunk = max_speakers_per_chunk
        self.max_speakers_per_frame = max_speakers_per_frame
        subsets = [
            combo
            for size in range(max_speakers_per_frame + 1)
            for combo in itertools.combinations(range(max_speakers_per_chunk), size)
        ]
        mapping = torch.zeros(len(subsets), max_speakers_per_chunk)
        for index, combo in enumerate(subsets):
            mapping[index, list(combo)] = 1.0
        # bit pattern (sum 2^k over active k) -> class index, for every 2^K pattern
        lookup = torch.empty(2**max_speakers_per_chunk, dtype=torch.long)
        class_of = {combo: index for index, combo in enumerate(subsets)}
        for pattern in range(2**max_speakers_per_chunk):
            active = tuple(k for k in range(max_speakers_per_chunk) if pattern >> k & 1)
            lookup[pattern] = class_of[active[:max_speakers_per_frame]]
        perms = torch.tensor(list(itertools.permutations(range(max_speakers_per_chunk))))
        self.register_buffer("mapping", mapping, persistent=False)
        self.register_buffer("lookup", lookup, persistent=False)
        self.register_buffer("permutations", perms, persistent=False)

    @property
    def num_classes(self) -> int:
        return self.mapping.shape[0]

    def to_multilabel(self, powerset: torch.Tensor, soft: bool = False) -> torch.Tensor:
        """Class indices ``[...]`` or log-probabilities ``[..., C]`` → activity ``[..., K]``.

        Log-probabilities give hard 0/1 activity of the most likely class, or with ``soft``
        the probability that each speaker is active.
        """
        if not powerset.is_floating_point():
            return self.mapping[powerset]
        if soft:
            return torch.exp(powerset) @ self.mapping
        return self.mapping[powerset.argmax(dim=-1)]

    def to_powerset(self, multilabel: torch.Tensor) -> torch.Tensor:
        """Activity ``[..., K]`` (0/1, K = max_speakers_per_chunk) → class indices ``[...]``."""
        if multilabel.shape[-1] != self.max_speakers_per_chunk:
            raise ValueError(
                f"expected {self.max_speakers_per_chunk} speakers, got {multilabel.shape[-1]}"
            )
        bits = 2 ** torch.arange(self.max_speakers_per_chunk, device=multilabel.device)
        pattern = ((multilabel > 0.5).long() * bits).sum(dim=-1)
        return self.lookup[pattern]

    def fit_speakers(self, labels: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Reference ``[B, F, S]`` → ``[B, F, K]``: the K most talkative speakers, sorted
        by talkativeness (most first), zero columns appended when S < K."""
        labels = labels.float()
        if mask is not None:
            labels = labels * mask[..., None].to(labels.dtype)
        k = self.max_speakers_per_chunk
        speech = labels.sum(dim=1)  # [B, S]
        # stable sort keeps the given order among equally talkative speakers
        order = torch.sort(speech, dim=-1, descending=True, stable=True).indices[:, :k]
        labels = torch.gather(labels, 2, order[:, None, :].expand(-1, labels.shape[1], -1))
        if labels.shape[-1] < k:
            labels = F.pad(labels, (0, k - labels.shape[-1]))
        return labels

    def align_reference(
        self, log_probs: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Permute the reference speakers ``[B, F, K]`` to best match the prediction.

        The cost of a permutation is the number of (frame, speaker) disagreements between the
        permuted reference and the hard multi-label view of the prediction; the soft view breaks
        ties.  Returns ``(permuted reference, permutation [B, K])``.
        """
        maskf = mask[..., None].to(log_probs.dtype)
        hard = self.to_multilabel(log_probs.detach()) * maskf
        soft = self.to_multilabel(log_probs.detach(), soft=True) * maskf
        ref = reference.to(log_probs.dtype) * maskf
        # cost[b, i, j]: mismatch when prediction speaker i is matched with reference speaker j
        hard_cost = torch.einsum("bfi,bfj->bij", hard, 1 - ref) + torch.einsum(
            "bfi,bfj->bij", 1 - hard, ref
        )
        soft_cost = torch.einsum("bfi,bfj->bij", soft, 1 - ref) + torch.einsum(
            "bfi,bfj->bij", 1 - soft, ref
        )
        frames = float(reference.shape[1] * reference.shape[2] + 1)
        cost = hard_cost + soft_cost / frames
        k = self.max_speakers_per_chunk
        perms = self.permutations  # [P, K]: prediction i <- reference perms[p, i]
        total = cost[:, torch.arange(k, device=cost.device), perms].sum(dim=-1)  # [B, P]
        best = perms[total.argmin(dim=-1)]  # [B, K]
        permuted = torch.gather(reference, 2, best[:, None, :].expand(-1, reference.shape[1], -1))
        return permuted, best

    def permutation_invariant_loss(
        self,
        log_probs: torch.Tensor,
        reference: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean NLL over valid frames of the aligned powerset reference.

        ``log_probs [B, F, C]``, ``reference [B, F, S]`` (any S: the K most talkative kept),
        ``mask [B, F]`` True on valid frames.  Returns ``(loss, target classes [B, F])``.
        """
        if mask is None:
            mask = torch.ones(log_probs.shape[:2], dtype=torch.bool, device=log_probs.device)
        reference = self.fit_speakers(reference, mask)
        permuted, _ = self.align_reference(log_probs, reference, mask)
        target = self.to_powerset(permuted)
        nll = F.nll_loss(log_probs.transpose(1, 2), target, reduction="none")  # [B, F]
        maskf = mask.to(nll.dtype)
        loss = (nll * maskf).sum() / maskf.sum().clamp(min=1.0)
        return loss, target


def frame_der(
    predicted: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor, powerset: Powerset
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame-level diarization error of hard multi-label predictions ``[B, F, K]`` against a
    reference ``[B, F, K]`` after the best speaker mapping per chunk.

    Returns ``(errors, reference speech)`` as frame-speaker counts, so DER = errors / speech
    (miss + false alarm + confusion, collar 0, overlap scored).
    """
    maskf = mask[..., None].to(predicted.dtype)
    hyp = predicted * maskf
    ref = reference.to(predicted.dtype) * maskf
    k = powerset.max_speakers_per_chunk
    matches = torch.einsum("bfi,bfj->bij", hyp, ref)
    perms = powerset.permutations
    correct = matches[:, torch.arange(k, device=hyp.device), perms].sum(-1).max(-1).values
    n_ref, n_hyp = ref.sum(-1), hyp.sum(-1)
    errors = torch.maximum(n_ref, n_hyp).sum(dim=-1) - correct
    return errors.sum(), n_ref.sum()
