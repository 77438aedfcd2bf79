"""s3prl upstream entry for the prunable WavLM (filled in by the prunable-WavLM work)."""


def register_s3prl_upstreams(hub) -> None:
    """Called by :mod:`espnet_prune.registration` right after ``s3prl.hub`` is imported."""
