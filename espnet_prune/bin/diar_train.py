"""Train the EEND powerset diarization model with ESPnet's trainer.

Example::

    python -m espnet_prune.bin.diar_train --config conf/train_teacher_wavlm_base_plus.yaml \\
        --train_data_path_and_name_and_type data/train/wav.scp,speech,sound \\
        --valid_data_path_and_name_and_type data/dev/wav.scp,speech,sound \\
        --output_dir exp/teacher --ngpu 1

The ``speech`` entry names the data dir (its ``wav.scp`` of whole recordings); ``rttm`` and
the optional ``uem`` are read from beside it.  Both data dirs are validated before any model
is built, so a bad corpus fails in seconds.  All ESPnet trainer options apply (``--resume``,
``--ngpu``, ``--keep_nbest_models``, ...); for several GPUs run it through
``python -m espnet2.bin.launch``.
"""

from __future__ import annotations

from espnet_prune.errors import ConfigError
from espnet_prune.utils.cli import run_main


def main(argv: list[str] | None = None) -> int:
    import espnet_prune  # noqa: F401  (registers the plugin into s3prl/ESPnet)
    from espnet_prune.diar.model_file import parse_task_args
    from espnet_prune.tasks.diar import PowersetDiarizationTask

    parser = PowersetDiarizationTask.get_parser()
    parser.description = __doc__
    args = parse_task_args(parser, argv)  # a broken --config YAML is one line
    if not args.print_config:
        if args.collect_stats:
            raise ConfigError("--collect_stats is not needed: no feature normalisation stats")
        PowersetDiarizationTask.check_required_command_args(args)
        PowersetDiarizationTask.validate_data(args)
    PowersetDiarizationTask.main(args=args)
    return 0


if __name__ == "__main__":
    run_main(main)
