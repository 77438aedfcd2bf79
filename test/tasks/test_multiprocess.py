"""Multi-process training through ESPnet's own DDP: ``diar_train`` and ``diar_prune`` with two
processes on CPU (gloo, ESPnet's ``--dist_world_size/--dist_rank/--dist_init_method`` options,
as ``espnet2.bin.launch`` passes them), compared with one process on the union batch.

One run (module fixture) starts three processes: the two ranks, and one plain process for
reference; each runs the fine-tuning (1 epoch) and the pruning (1 epoch), the ranks then resume
the pruning for a second epoch.  A driver in every process records, per training step, the
chunk keys of the batch and the model state, and (rank 1) every file it writes.

Normalisation: ESPnet weights each rank's loss by its batch size and divides by the total
(``loss * w_r / W * world_size``; DDP then averages the gradients), so N ranks make the update
of one process on the union batch when the loss is a per-chunk mean.  Our losses are means over
the batch's frames: the same thing when every chunk has the same number of frames (all chunks
of ``chunk_size`` s; only recordings or UEM regions shorter than that give shorter ones).
BatchNorm (the Conformer's convolution module) sees only its rank's batch, as in every ESPnet
DDP run, so the reference comparison uses ``use_cnn_module: false``; dropout is off.
"""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from diar_fixtures import make_diar_data_dir

from espnet_prune.wavlm import WavLM, save_wavlm, wavlm_config

REPO = Path(__file__).resolve().parents[2]
WORLD = 2

DRIVER = textwrap.dedent(
    """
    import json, os, sys, time, traceback
    from pathlib import Path

    import torch

    plan = json.loads(Path(sys.argv[1]).read_text())
    rank, world = plan["rank"], plan["world_size"]
    record = Path(plan["record"])
    watch = os.path.abspath(plan["watch"]) + os.sep
    writes, job = [], [None]
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def watched(path):
        if isinstance(path, int):
            return False
        return os.path.abspath(os.fsdecode(path)).startswith(watch)

    def audit(event, args):  # every file this process writes under the experiments dir
        if event == "open":  # (making a directory that every rank needs is not counted)
            path, mode, flags = args
            writing = any(c in (mode or "") for c in "wax+") or bool((flags or 0) & WRITE_FLAGS)
        elif event in ("os.rename", "os.symlink"):  # (src, dst, ...): the new name
            path, writing = args[1], True
        elif event in ("os.remove", "os.truncate"):
            path, writing = args[0], True
        else:
            return
        if writing and watched(path):
            where = traceback.format_stack(limit=4)[0].strip()
            writes.append([job[0], event, os.fsdecode(path), where])

    sys.addaudithook(audit)
    save = torch.save

    def recording_save(obj, f, *args, **kwargs):  # torch.save opens files in C++
        if isinstance(f, (str, os.PathLike)) and watched(f):
            where = traceback.format_stack(limit=2)[0].strip()
            writes.append([job[0], "torch.save", os.fspath(f), where])
        return save(obj, f, *args, **kwargs)

    torch.save = recording_save

    from espnet_prune.bin import diar_prune, diar_train
    from espnet_prune.tasks.chunked import ProgressBarTrainer

    original = ProgressBarTrainer.train_one_epoch.__func__

    def train_one_epoch(cls, model, iterator, **kwargs):
        module = getattr(model, "module", model)
        steps = []

        def snapshot():
            return {k: v.detach().clone() for k, v in module.state_dict().items()}

        def recorded():  # the state before each step, and after the last one
            for utt_id, batch in iterator:
                steps.append({"keys": list(utt_id), "state": snapshot()})
                yield utt_id, batch
            steps.append({"keys": None, "state": snapshot()})

        optimizer = kwargs["optimizers"][0].state_dict()
        result = original(cls, model, recorded(), **kwargs)
        epoch = kwargs["reporter"].epoch
        save({"steps": steps, "optimizer_at_start": optimizer, "ddp": model is not module},
             record / f"{job[0]}.e{epoch}.r{rank}.pt")
        return result

    ProgressBarTrainer.train_one_epoch = classmethod(train_one_epoch)
    mains = {"diar_train": diar_train.main, "diar_prune": diar_prune.main}
    for item in plan["jobs"]:
        job[0] = item["name"]
        if item.get("wait_for"):
            deadline = time.time() + 600
            while not Path(item["wait_for"]).exists():
                if time.time() > deadline:
                    sys.exit(f"timed out waiting for {item['wait_for']}")
                time.sleep(0.2)
        argv = list(item["argv"])
        if world > 1:
            argv += ["--ngpu", "0", "--dist_backend", "gloo",
                     "--multiprocessing_distributed", "false",
                     "--dist_world_size", str(world), "--dist_rank", str(rank),
                     "--dist_init_method", f"file://{record}/init_{item['name']}"]
        assert mains[item["module"]](argv) == 0
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        if item.get("done") and not rank:
            Path(item["done"]).write_text("done")
    (record / f"writes.r{rank}.json").write_text(json.dumps(writes))
    """
)

ENCODER = {
    "output_size": 16,
    "attention_heads": 2,
    "linear_units": 32,
    "num_blocks": 1,
    "use_cnn_module": False,  # BatchNorm would normalise per rank
    "dropout_rate": 0.0,
    "attention_dropout_rate": 0.0,
}
# 2 recordings x 6 s, 2 s chunks: 6 chunks, batches of 4 + 2 (each rank: 2 + 1) per epoch
COMMON = {
    "chunk_size": 2.0,
    "chunk_shift": 2.0,
    "valid_chunk_shift": 2.0,
    "batch_size": 4,
    "num_workers": 0,
    "seed": 0,
    "progress_bar": False,
    "use_matplotlib": False,
    "grad_clip": 1.0e6,  # no clipping: the gradients themselves are compared
    "keep_nbest_models": 1,
    "optim": "sgd",  # the update is proportional to the gradient (Adam's first step is not)
}
STEPS_PER_EPOCH = 2


def write_config(path, config):
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiprocess")
    data = make_diar_data_dir(root / "data")
    torch.manual_seed(0)
    save_wavlm(WavLM(wavlm_config("tiny")), root / "wavlm.pt")
    train_config = write_config(root / "train.yaml", {
        **COMMON,
        "frontend": "wavlm_prunable",
        "frontend_conf": {"path": str(root / "wavlm.pt")},
        "encoder": "conformer",
        "encoder_conf": ENCODER,
        "model_conf": {"max_speakers_per_chunk": 3, "max_speakers_per_frame": 2},
        "optim_conf": {"lr": 0.5},
        "upstream_lr": None,  # one learning rate: WavLM moves as much as the rest
        "max_epoch": 1,
    })  # fmt: skip
    prune_config = write_config(root / "prune.yaml", {
        **COMMON,
        "model_conf": {"target_sparsity": 0.5, "distill_layers": [0, 1, 2, 3]},
        "optim_conf": {"lr": 0.05, "momentum": 0.9},  # momentum: resume needs its state
        "keep_nbest_models": 2,
    })  # fmt: skip
    data_args = [
        "--train_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
        "--valid_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
    ]  # fmt: skip
    exp_ddp, exp_ref, record = root / "exp_ddp", root / "exp_ref", root / "record"
    record.mkdir()
    teacher_done = record / "teacher.done"
    teacher = [
        "--teacher", str(exp_ddp / "train" / "valid.loss.ave.pth"),
        "--teacher_config", str(exp_ddp / "train" / "config.yaml"),
    ]  # fmt: skip

    def jobs(exp, resume):
        train = ["--config", str(train_config), *data_args, "--output_dir", f"{exp}/train"]
        prune = ["--config", str(prune_config), *data_args, *teacher,
                 "--output_dir", f"{exp}/prune", "--resume", "true"]  # fmt: skip
        plan = [
            {"name": "train", "module": "diar_train", "argv": train,
             "done": str(teacher_done) if resume else None},
            {"name": "prune", "module": "diar_prune", "argv": [*prune, "--max_epoch", "1"],
             "wait_for": str(teacher_done)},
        ]  # fmt: skip
        if resume:  # a second run continues the first from its checkpoint.pth
            plan.append({"name": "resume", "module": "diar_prune",
                         "argv": [*prune, "--max_epoch", "2"]})  # fmt: skip
        return plan

    driver = root / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    procs = []
    for rank, world, exp in ((0, WORLD, exp_ddp), (1, WORLD, exp_ddp), ("ref", 1, exp_ref)):
        plan = {"rank": rank, "world_size": world, "record": str(record),
                "watch": str(exp), "jobs": jobs(exp, resume=world > 1)}  # fmt: skip
        plan_file = record / f"plan.{rank}.json"
        plan_file.write_text(json.dumps(plan))
        log = open(record / f"stderr.{rank}.txt", "w")
        procs.append((rank, log, subprocess.Popen(
            [sys.executable, str(driver), str(plan_file)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )))  # fmt: skip
    deadline = time.monotonic() + 600
    try:  # a rank that fails leaves the other waiting for it: stop all at the first failure
        while any(proc.poll() is None for _, _, proc in procs) and time.monotonic() < deadline:
            if any(proc.poll() for _, _, proc in procs):
                break
            time.sleep(0.2)
    finally:
        for _, log, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    for rank, _, proc in sorted(procs, key=lambda p: p[2].returncode < 0):  # killed ones last
        output = (record / f"stderr.{rank}.txt").read_text()
        assert proc.returncode == 0, f"process {rank} (exit {proc.returncode}):\n{output[-3000:]}"
    return {"exp": exp_ddp, "ref": exp_ref, "record": record}


def recorded(runs, job, epoch, rank):
    return torch.load(runs["record"] / f"{job}.e{epoch}.r{rank}.pt", weights_only=False)


def assert_same_state(actual, expected, what, rtol=1e-4, atol=1e-6):
    assert actual.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=rtol, atol=atol,
                                   msg=lambda m, k=key: f"{what}: {k}: {m}")  # fmt: skip


def trainable(state):
    """Entries that training moves (not the frozen teacher, not buffers such as step)."""
    return {
        k: v for k, v in state.items()
        if v.is_floating_point() and not k.startswith("teacher.")
    }  # fmt: skip


def test_ranks_train_on_disjoint_shares_of_the_batch(runs):
    for job in ("train", "prune"):
        ranks = [recorded(runs, job, 1, r)["steps"] for r in range(WORLD)]
        reference = recorded(runs, job, 1, "ref")["steps"]
        assert all(r is not None for r in ranks)
        assert [len(steps) for steps in ranks] == [STEPS_PER_EPOCH + 1] * WORLD
        assert all(run["ddp"] for run in (recorded(runs, job, 1, r) for r in range(WORLD)))
        for step in range(STEPS_PER_EPOCH):
            shares = [set(steps[step]["keys"]) for steps in ranks]
            assert shares[0] and shares[1] and not shares[0] & shares[1]
            assert shares[0] | shares[1] == set(reference[step]["keys"]), step


@pytest.mark.parametrize("job", ["train", "prune"])
def test_each_step_equals_one_process_on_the_union_batch(runs, job):
    ranks = [recorded(runs, job, 1, r)["steps"] for r in range(WORLD)]
    reference = recorded(runs, job, 1, "ref")["steps"]
    for step in range(STEPS_PER_EPOCH + 1):
        state0, state1 = ranks[0][step]["state"], ranks[1][step]["state"]
        for key in state0:  # DDP: the ranks hold the very same model after every step
            assert torch.equal(state0[key], state1[key]), (step, key)
        assert_same_state(trainable(state0), trainable(reference[step]["state"]),
                          f"{job} after {step} steps")  # fmt: skip
    # the steps did move the model, by far more than the tolerance
    before, after = trainable(reference[0]["state"]), trainable(reference[1]["state"])
    moved = max((after[k] - before[k]).abs().max().item() for k in before)
    assert moved > 1e-3
    final = torch.load(runs["exp"] / job / "1epoch.pth", weights_only=True)
    assert all(torch.equal(final[k], v) for k, v in ranks[0][-1]["state"].items())


def test_gates_and_lagrange_multipliers_stay_in_sync(runs):
    for job, epoch in (("prune", 1), ("resume", 2)):
        ranks = [recorded(runs, job, epoch, r)["steps"] for r in range(WORLD)]
        for step in range(STEPS_PER_EPOCH + 1):
            state0, state1 = ranks[0][step]["state"], ranks[1][step]["state"]
            keys = [k for k in state0 if k.endswith("log_alpha") or k.startswith("lagrangian.")]
            assert len(keys) > 2
            for key in keys:
                assert torch.equal(state0[key], state1[key]), (job, step, key)
        final = ranks[0][-1]["state"]
        assert float(final["lagrangian.lambda1"]) != 0.0


def test_only_rank_0_writes_logs_steps_and_exports(runs):
    exp = runs["exp"]
    writes = [json.loads((runs["record"] / f"writes.r{r}.json").read_text()) for r in (0, 1)]
    # rank 1 leaves no file behind (a writability probe it makes and removes is no output)
    removed = {path for _, event, path, _ in writes[1] if event == "os.remove"}
    kept = [w for w in writes[1] if w[1] != "os.remove" and w[2] not in removed]
    assert kept == [], kept
    written = {Path(path).name for _, _, path, _ in writes[0]}
    assert {"config.yaml", "checkpoint.pth", "prune_steps.tsv", "wavlm_masked.pt",
            "prune_summary.json"} <= written  # fmt: skip
    logs = [(runs["record"] / f"stderr.{r}.txt").read_text() for r in (0, 1)]
    assert " INFO: " in logs[0] and " INFO: " not in logs[1]
    assert "expected sparsity" in logs[0] and "expected sparsity" not in logs[1]
    rows = (exp / "prune" / "prune_steps.tsv").read_text().splitlines()[1:]
    assert [int(row.split("\t")[0]) for row in rows] == list(range(2 * STEPS_PER_EPOCH))


def test_resume_with_two_processes(runs):
    exp = runs["exp"] / "prune"
    checkpoint = torch.load(exp / "checkpoint.pth", weights_only=False)
    assert checkpoint["reporter"]["epoch"] == 2
    assert int(checkpoint["model"]["schedule.step"]) == 2 * STEPS_PER_EPOCH
    epoch1 = recorded(runs, "prune", 1, 0)
    for rank in range(WORLD):
        resumed = recorded(runs, "resume", 2, rank)  # epoch 2 only: epoch 1 was not redone
        assert not (runs["record"] / f"resume.e1.r{rank}.pt").exists()
        # every rank restored the model and the optimiser (momentum) of epoch 1
        assert all(torch.equal(v, epoch1["steps"][-1]["state"][k])
                   for k, v in resumed["steps"][0]["state"].items())  # fmt: skip
        momentum = resumed["optimizer_at_start"]["state"]
        assert momentum and all(s["momentum_buffer"] is not None for s in momentum.values())
    # the resumed run trained on: both ranks end equal, and so does the saved model
    ranks = [recorded(runs, "resume", 2, r)["steps"][-1]["state"] for r in range(WORLD)]
    final = torch.load(exp / "2epoch.pth", weights_only=True)
    for key, value in final.items():
        assert torch.equal(ranks[0][key], value) and torch.equal(ranks[1][key], value), key
    assert not torch.equal(final["lagrangian.lambda1"],
                           epoch1["steps"][-1]["state"]["lagrangian.lambda1"])  # fmt: skip


def gather(outputs):
    """What DataParallel's gather does with the replicas' outputs: concatenate along dim 0."""
    first = outputs[0]
    if isinstance(first, dict):
        return {k: gather([o[k] for o in outputs]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(gather(list(parts)) for parts in zip(*outputs))
    assert first.dim() >= 1, "0-dim tensors cannot be gathered"
    assert all(o.device == outputs[0].device for o in outputs)
    return torch.cat(outputs)


def espnet_data_parallel_loss(outputs):
    """ESPnet's trainer with ``--ngpu N`` (no DDP), on the gathered outputs."""
    from espnet2.torch_utils.recursive_op import recursive_average

    loss, stats, weight = gather(outputs)
    loss = (loss * weight.type(loss.dtype)).sum()
    stats, weight = recursive_average(stats, weight, distributed=False)
    return loss / weight, stats


def test_outputs_gather_like_espnet_data_parallel(tiny_data_dir, tmp_path):
    """``--ngpu 2`` without DDP: two replicas' outputs, gathered and averaged by ESPnet's
    trainer, give the loss of the whole batch (and a replica on another GPU logs no step)."""
    from espnet2.train.collate_fn import CommonCollateFn

    from espnet_prune.diar.data import DiarizationChunkDataset
    from espnet_prune.diar.encoder import PowersetConformerEncoder
    from espnet_prune.diar.frontends import FbankFrontend
    from espnet_prune.diar.model import PowersetDiarizationModel
    from espnet_prune.prune.model import DistillPruneModel
    from espnet_prune.tasks.distill_prune import StepLog, is_secondary_replica

    dataset = DiarizationChunkDataset(tiny_data_dir, 2.0, 2.0, 160, 400)
    _, batch = CommonCollateFn(int_pad_value=-1)([dataset[k] for k in dataset.keys[:4]])
    torch.manual_seed(0)
    encoder = PowersetConformerEncoder(**{**ENCODER, "use_cnn_module": True})
    diar = PowersetDiarizationModel(FbankFrontend(n_mels=40), encoder, 3, 2).eval()
    teacher = WavLM(wavlm_config("tiny")).eval()
    student = WavLM(wavlm_config("tiny"))
    student.load_state_dict(teacher.state_dict())
    student.add_pruning_gates(("conv", "head", "interm"))
    prune = DistillPruneModel(teacher, student, (0, 3)).eval()
    halves = [{k: v[:2] for k, v in batch.items()}, {k: v[2:] for k, v in batch.items()}]
    with torch.no_grad():
        for model, keys in ((diar, ("loss",)), (prune, ("loss", "distill_loss", "lambda1"))):
            whole_loss, whole_stats, whole_weight = model(**batch)
            assert whole_loss.shape == whole_weight.shape == (1,) and int(whole_weight) == 4
            loss, stats = espnet_data_parallel_loss([model(**half) for half in halves])
            torch.testing.assert_close(loss, whole_loss[0])
            for key in keys:
                torch.testing.assert_close(stats[key], whole_stats[key][0])
    step_log = StepLog(tmp_path / "steps.tsv")
    prune.register_forward_hook(step_log.after_forward)
    replica = prune._replicate_for_data_parallel()
    assert step_log.after_forward in replica._forward_hooks.values()  # every replica calls it
    with torch.no_grad():
        _, stats, _ = prune.train()(**halves[0])  # logs step 0 (the CPU module is the first)
    for gpu in (1, 0):  # a replica on another GPU than the first logs nothing
        loss_on = SimpleNamespace(device=torch.device("cuda", gpu))
        step_log.after_forward(replica, (), (loss_on, stats, None))
    assert [row.split("\t")[0] for row in step_log.path.read_text().splitlines()] == [
        "step", "0", "0"]
    assert is_secondary_replica(replica, torch.device("cuda", 1))
    assert not is_secondary_replica(replica, torch.device("cuda", 0))
    assert not is_secondary_replica(prune, torch.device("cuda", 1))


FAKE_TOOLS = {
    # the trainer records its arguments instead of training
    "fakepy": """#!/usr/bin/env bash
        if [ "$1" = -m ] && [ "$2" = espnet_prune.bin.diar_train ]; then
            printf '%s\\n' "${@:3}" > "$CALLS/trainer"; exit 0
        fi
        exec "$REAL_PYTHON" "$@"
        """,
    # sbatch --wait: record the options, run the job script here as array task 1
    "sbatch": """#!/usr/bin/env bash
        printf '%s\\n' "$@" > "$CALLS/sbatch"
        SLURM_ARRAY_TASK_ID=1 bash "${@: -1}"
        """,
    "srun": """#!/usr/bin/env bash
        printf '%s\\n' "$@" > "$CALLS/srun"
        shift; exec "$@"
        """,
}


def test_diar_sh_launches_multi_gpu_and_multi_node_training(tmp_path):
    """``./run.sh --ngpu 4`` goes through ESPnet's launcher (one node: ESPnet spawns one DDP
    process per GPU); ``--num_nodes 2`` with the Slurm backend asks sbatch for 2 nodes and
    starts ESPnet's Slurm mode with srun."""
    template = REPO / "egs2" / "TEMPLATE" / "diar1"
    recipe = tmp_path / "egs2" / "toy" / "diar1"
    (recipe / "local").mkdir(parents=True)
    for name in ("diar.sh", "path.sh", "cmd.sh", "utils", "pyscripts"):
        os.symlink(template / name, recipe / name)
    source = make_diar_data_dir(tmp_path / "source")
    data_sh = recipe / "local" / "data.sh"
    data_sh.write_text("#!/usr/bin/env bash\nfor s in train dev test; do mkdir -p data/$s; "
                       f"cp {source}/wav.scp {source}/rttm data/$s; done\n")
    (recipe / "fbank.yaml").write_text("{}\n")
    tools, calls = tmp_path / "tools", tmp_path / "calls"
    tools.mkdir()
    calls.mkdir()
    for name, text in FAKE_TOOLS.items():
        (tools / name).write_text(textwrap.dedent(text))
    for path in (data_sh, *tools.iterdir()):
        path.chmod(0o755)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}:{tools}",
           "CALLS": str(calls), "REAL_PYTHON": sys.executable}  # fmt: skip

    def diar_sh(*args, backend="local"):
        return subprocess.run(
            ["./diar.sh", "--python", str(tools / "fakepy"), "--models", "fbank",
             "--fbank_config", "fbank.yaml", "--stop_stage", "3", *args],
            cwd=recipe, env={**env, "CMD_BACKEND": backend}, capture_output=True, text=True,
        )  # fmt: skip

    def called(name):
        return (calls / name).read_text().splitlines()

    proc = diar_sh("--ngpu", "4")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "single-node with 4gpu on distributed mode" in proc.stdout + proc.stderr
    trainer = called("trainer")
    assert trainer[-4:] == ["--ngpu", "4", "--multiprocessing_distributed", "True"]
    assert trainer[:2] == ["--resume", "true"]

    proc = diar_sh("--stage", "3", "--ngpu", "4", "--num_nodes", "2", backend="slurm")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sbatch = called("sbatch")
    assert {"--nodes=2", "--ntasks-per-node=1", "--gres=gpu:4"} <= set(sbatch)
    assert called("srun")[0] == "--export=ALL"
    trainer = called("trainer")
    assert trainer[:2] == ["--resume", "true"]
    tail = trainer[trainer.index("--ngpu"):]
    assert tail[:7] == ["--ngpu", "4", "--multiprocessing_distributed", "true",
                        "--dist_launcher", "slurm", "--dist_init_method"]  # fmt: skip
    assert tail[7].startswith(f"file://{recipe / 'exp' / 'fbank'}/.dist_init_")

    proc = diar_sh("--stage", "3", "--ngpu", "4", "--num_nodes", "2")  # local backend
    assert proc.returncode != 0 and "several nodes need Slurm" in proc.stderr


def test_export_process_after_espnet_spawned_the_ranks(monkeypatch):
    """``--ngpu N --multiprocessing_distributed true``: the ranks were ESPnet's children and
    each node's parent returns from ``main``: the parent of node 0 alone exports."""
    import argparse

    from espnet_prune.prune.model import is_export_process

    assert not torch.distributed.is_initialized()
    assert is_export_process(argparse.Namespace(distributed=False))
    spawned = dict(distributed=True, multiprocessing_distributed=True, dist_launcher=None)
    assert is_export_process(argparse.Namespace(**spawned, dist_rank=0))  # one node
    assert not is_export_process(argparse.Namespace(**spawned, dist_rank=1))  # node 1 of 2
    monkeypatch.setenv("SLURM_PROCID", "1")  # srun: the node rank comes from Slurm
    for name, value in (("SLURM_NTASKS", "2"), ("SLURM_STEP_NUM_NODES", "2"),
                        ("SLURM_STEP_NODELIST", "n[1-2]"), ("SLURM_NODEID", "1")):  # fmt: skip
        monkeypatch.setenv(name, value)
    slurm = dict(spawned, dist_launcher="slurm", dist_rank=None)
    assert not is_export_process(argparse.Namespace(**slurm))
    monkeypatch.setenv("SLURM_NODEID", "0")
    assert is_export_process(argparse.Namespace(**slurm))
