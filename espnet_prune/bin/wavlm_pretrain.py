"""Pre-train a WavLM self-supervised (HuBERT-style masked prediction) with ESPnet's trainer.

Example::

    python -m espnet_prune.bin.wavlm_pretrain --config conf/pretrain_wavlm.yaml \\
        --init_wavlm exp/wavlm_init/wavlm.pt \\
        --train_data_path_and_name_and_type data/pretrain/wav.scp,speech,sound \\
        --valid_data_path_and_name_and_type data/pretrain_dev/wav.scp,speech,sound \\
        --output_dir exp/wavlm_pretrain

The data dirs hold whole unlabelled recordings (``wav.scp``; no RTTM is read).  Targets: the
k-means clusters (``--num_clusters``, fitted once into ``OUTPUT_DIR/kmeans.npy``) of MFCC
frames, or with ``--target_features wavlm --target_wavlm W.pt`` of an earlier pre-trained
WavLM's features (second iteration).  The result, ``OUTPUT_DIR/wavlm.pt``, is a WavLM
checkpoint like ``wavlm_convert``'s (the teacher's ``frontend_conf.path``).  All ESPnet
trainer options apply (``--resume``, ``--ngpu``, ...); for several GPUs run it through
``python -m espnet2.bin.launch``.
"""

from __future__ import annotations

from espnet_prune.errors import ConfigError
from espnet_prune.utils.cli import run_main


def main(argv: list[str] | None = None) -> int:
    import espnet_prune  # noqa: F401  (registers the plugin into s3prl/ESPnet)
    from espnet_prune.diar.model_file import parse_task_args
    from espnet_prune.tasks.wavlm_pretrain import WavLMPretrainTask

    parser = WavLMPretrainTask.get_parser()
    parser.description = __doc__
    args = parse_task_args(parser, argv)  # a broken --config YAML is one line
    if not args.print_config:
        if args.collect_stats:
            raise ConfigError("--collect_stats is not needed: no feature normalisation stats")
        WavLMPretrainTask.check_required_command_args(args)
        WavLMPretrainTask.check_task_args(args)
        WavLMPretrainTask.validate_data(args)
    WavLMPretrainTask.main(args=args)
    return 0


if __name__ == "__main__":
    run_main(main)
