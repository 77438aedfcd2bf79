"""PNG of what each layer keeps after pruning (CNN channels, attention heads, FFN units)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

# Row titles, in the order they are drawn; keys are the unit names of ``pruning_units``.
UNIT_TITLES = {
    "conv": "CNN channels per conv layer",
    "head": "attention heads per Transformer layer",
    "interm": "FFN units per Transformer layer",
}


def plot_kept_units(
    kept: Mapping[str, Sequence[int]],
    original: Mapping[str, Sequence[int]],
    path: str | Path,
    title: str = "",
) -> Path:
    """Bar chart per unit type: kept count per layer over the original count (grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in UNIT_TITLES if name in kept]
    if not names:
        raise ValueError("nothing to plot: no conv/head/interm counts given")
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.6 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        kept_counts = list(kept[name])
        full_counts = list(original[name])
        if len(kept_counts) != len(full_counts):
            raise ValueError(f"{name}: {len(kept_counts)} kept layers vs {len(full_counts)}")
        positions = range(len(kept_counts))
        ax.bar(positions, full_counts, color="0.85", label="original")
        ax.bar(positions, kept_counts, color="tab:blue", label="kept")
        for x, count in enumerate(kept_counts):
            ax.text(x, count, str(count), ha="center", va="bottom", fontsize=7)
        total_kept, total_full = sum(kept_counts), sum(full_counts)
        ax.set_title(f"{UNIT_TITLES[name]}: {total_kept}/{total_full} kept", fontsize=9)
        ax.set_xticks(list(positions))
        ax.set_xlabel("layer", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    from espnet_prune.utils.io import atomic_write

    path = Path(path)
    try:
        with atomic_write(path, make_parents=True) as tmp:
            fig.savefig(tmp, dpi=100, format=path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return path


def kept_units(config) -> dict[str, list[int]]:
    """Per-layer unit counts of a :class:`~espnet_prune.wavlm.config.WavLMConfig`."""
    return {
        "conv": list(config.conv_channels),
        "head": [
            len(heads) if use else 0
            for heads, use in zip(config.kept_heads, config.use_attention)
        ],
        "interm": [dim if use else 0 for dim, use in zip(config.ffn_dims, config.use_ffn)],
    }
