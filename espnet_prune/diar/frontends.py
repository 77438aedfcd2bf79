"""Diarization frontends (filled in by the EEND-task work)."""


def register_espnet_frontends(diar_task_module) -> None:
    """Called right after ``espnet2.tasks.diar`` is imported: adds our frontends there."""
