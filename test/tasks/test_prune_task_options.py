"""The pruning task shares the chunked-data options with the diarization task, not its
diarization-only ones, and takes its model defaults from the model."""

import inspect


def option_strings(parser):
    return {option for action in parser._actions for option in action.option_strings}


def test_the_pruning_task_offers_only_its_own_options():
    from espnet_prune.tasks.diar import PowersetDiarizationTask
    from espnet_prune.tasks.distill_prune import DistillPruneTask

    shared = {"--chunk_size", "--chunk_shift", "--valid_chunk_shift", "--sample_rate",
              "--progress_bar", "--grad_clip_percentile", "--grad_clip_history", "--model_conf"}
    diarization_only = {"--upstream_lr", "--frontend", "--frontend_conf", "--encoder",
                        "--encoder_conf"}
    prune_parser = DistillPruneTask.get_parser()
    assert shared <= option_strings(prune_parser)
    assert not diarization_only & option_strings(prune_parser)
    assert shared | diarization_only <= option_strings(PowersetDiarizationTask.get_parser())
    # --model_conf documents the pruning model's keys, not the diarization model's
    model_conf = next(a for a in prune_parser._actions if "--model_conf" in a.option_strings)
    assert "target_sparsity=0.8" in model_conf.help and "max_speakers" not in model_conf.help
    args = prune_parser.parse_args([])
    assert args.model_conf == {} and args.keep_nbest_models == [1]
    assert not hasattr(args, "upstream_lr")


def test_model_conf_defaults_are_the_model_signatures():
    from espnet_prune.prune.model import DistillPruneModel
    from espnet_prune.tasks.distill_prune import TASK_MODEL_CONF, model_conf_with_defaults

    conf = model_conf_with_defaults({})
    signature = inspect.signature(DistillPruneModel).parameters
    model_keys = set(conf) - set(TASK_MODEL_CONF)
    assert model_keys == {"distill_layers", "l1_weight", "cos_weight", "regularizer", "target",
                          "target_sparsity", "warmup_steps", "diar_weight"}
    assert all(conf[key] == signature[key].default for key in model_keys)
    assert (conf["target_sparsity"], conf["target"], conf["cnn_grad_scale"]) == (0.8, "params",
                                                                                0.1)
