"""A recipe's scores collected into ``exp/scores.json`` and ``RESULTS.md`` (recipe stage 8,
the make_results command).

The JSON is what scripts and CI compare (fractions, one entry per model and test set); the
Markdown follows ESPnet's RESULTS.md layout (environment header, then tables) so a result can
be traced to the code, versions and command that produced it.
"""

from __future__ import annotations

import json
import math
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from espnet_prune.errors import ConfigError, DataError
from espnet_prune.utils.values import Rule, check_value

# the key of the CPU speed record (wavlm_bench JSON: seconds per second of audio) that the
# results read; espnet_prune.measure.bench writes it
SPEED_KEY = "seconds_per_audio_second"

MODEL_DESCRIPTIONS = {
    "fbank": "fbank baseline (80-dim fbank + Conformer)",
    "teacher": "WavLM + Conformer, fine-tuned (teacher)",
    "teacher_nopretrain": "the teacher's WavLM + Conformer fine-tuned from the WavLM's starting "
                          "checkpoint, without the recipe's self-supervised pre-training",
    "diarizen": "released DiariZen model, imported as is (diar.sh --init_from_diarizen)",
    "diarizen_finetuned": "released DiariZen model, fine-tuned on this recipe's train set",
}


# The pruned models of a recipe run (diar.sh --prune_from/--sparsities): pruned[_pt][_sNN];
# _pt: pruned before fine-tuning; _sNN: target NN % (none on the run's first target).  Their
# pruning runs are <expdir>/prune[_pt][_sNN] (prune_summary.json: the target).
PRUNED_NAME = re.compile(r"pruned(?P<pt>_pt)?(?:_s(?P<target>\d+))?")
ORDERS = {
    "finetuned": "fine-tune -> prune",
    "pretrained": "prune -> fine-tune",
}


def pruning_of(expdir: Path, name: str) -> dict | None:
    """{"order": finetuned|pretrained, "target": sparsity in % or None} of a pruned model's
    name (None: not a pruned model); the target of an unsuffixed name comes from its pruning
    run's prune_summary.json, when that is there."""
    match = PRUNED_NAME.fullmatch(name)
    if match is None:
        return None
    target = int(match["target"]) if match["target"] else None
    summary = expdir / ("prune" + name[len("pruned"):]) / "prune_summary.json"
    if target is None and summary.is_file():
        value = read_json(summary).get("target_sparsity")
        if isinstance(value, int | float):
            target = round(100 * value)
    return {"order": "pretrained" if match["pt"] else "finetuned", "target": target}


def describe(name: str, pruning: dict | None) -> str:
    if pruning is None:
        return MODEL_DESCRIPTIONS.get(name, name)
    target = f" to {pruning['target']} % sparsity" if pruning["target"] is not None else ""
    if pruning["order"] == "pretrained":
        return (f"pre-trained WavLM pruned{target} by distillation on unlabelled audio, "
                "distilled again, then fine-tuned with a fresh Conformer (prune -> fine-tune)")
    return (f"teacher's WavLM pruned{target} (distillation + L0), distilled again, then "
            "fine-tuned with a fresh Conformer (fine-tune -> prune, the paper's order)")


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: file does not exist (did the earlier stage run?)") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    return data


def model_size(model_dir: Path, name: str) -> dict:
    """params / macs_per_second of the model's WavLM; the fbank baseline has none (0)."""
    if name == "fbank":
        return {"params": 0, "macs_per_second": 0.0}
    path = model_dir / "wavlm_stats.json"
    stats = read_json(path)
    for key in ("params", "macs_per_second"):
        if (not isinstance(stats.get(key), int | float) or isinstance(stats[key], bool)
                or not math.isfinite(stats[key]) or stats[key] < 0):
            raise DataError(f"{path}: no finite number >= 0 under {key!r}")
    return {"params": int(stats["params"]), "macs_per_second": float(stats["macs_per_second"])}


def measured_speed(model_dir: Path) -> float | None:
    """Seconds of compute per second of audio (``wavlm_bench --checkpoint``), if it ran."""
    path = model_dir / "wavlm_bench.json"
    if not path.exists():
        return None
    bench = read_json(path)
    if (isinstance(bench.get(SPEED_KEY), int | float) and math.isfinite(bench[SPEED_KEY])
            and bench[SPEED_KEY] > 0):
        return float(bench[SPEED_KEY])
    raise DataError(f"{path}: no positive number under {SPEED_KEY!r} (expected wavlm_bench "
                    "--checkpoint output)")


# the range of each rate of a diar_score JSON (fractions): a false alarm, hence the DER, can
# exceed the scored speech; miss, confusion and JER cannot
RATE_RULES = {
    "der": Rule(float, low=0.0), "false_alarm": Rule(float, optional=True, low=0.0),
    "miss": Rule(float, optional=True, low=0.0, high=1.0),
    "confusion": Rule(float, optional=True, low=0.0, high=1.0),
    "jer": Rule(float, optional=True, low=0.0, high=1.0),
}


def check_rates(overall: dict, path) -> None:
    """A DataError line naming ``path`` and the key when a rate is not a finite fraction in its
    range (NaN, a negative or a JER over 1 would go into RESULTS.md as a result)."""
    for key, rule in RATE_RULES.items():
        if key in overall:
            try:
                check_value(overall[key], rule, path, f"overall.{key}")
            except ConfigError as exc:
                raise DataError(str(exc)) from None


def collect(expdir: Path, models: list[str], test_sets: list[str], tag: str):
    """(scores for scores.json, details for the tables)."""
    scores, details = {}, {}
    for name in models:
        model_dir = expdir / name
        size = model_size(model_dir, name)
        speed = None if name == "fbank" else measured_speed(model_dir)
        pruning = pruning_of(expdir, name)
        details[name] = {"dir": str(model_dir), "speed": speed, **size, "sets": {},
                         "pruning": pruning, "description": describe(name, pruning)}
        scores[name] = {}
        for dset in test_sets:
            path = model_dir / tag / dset / "score.json"
            overall = read_json(path).get("overall")
            if not isinstance(overall, dict) or not isinstance(overall.get("der"), int | float):
                raise DataError(f"{path}: no overall DER (expected diar_score --json output)")
            check_rates(overall, path)
            scores[name][dset] = {
                "der": float(overall["der"]),
                "jer": float(overall["jer"]) if overall.get("jer") is not None else None,
                **size,
            }
            details[name]["sets"][dset] = overall
    teacher_speed = details.get("teacher", {}).get("speed")
    for name in models:
        speed = details[name]["speed"]
        if speed and teacher_speed:
            details[name]["speedup"] = teacher_speed / speed
            for dset in test_sets:
                scores[name][dset]["speedup"] = round(teacher_speed / speed, 3)
    return scores, details


def macro_average(scores: dict, test_sets: list[str]) -> dict:
    """Mean DER/JER over the test sets, each counted once whatever its length (the paper's
    last column); JER only when every test set has one."""
    table = {}
    for name, per_set in scores.items():
        table[name] = {
            metric: sum(per_set[d][metric] for d in test_sets) / len(test_sets)
            for metric in ("der", "jer")
            if all(per_set[d].get(metric) is not None for d in test_sets)
        }
    return table


def stage_wall_time(expdir: Path) -> tuple[float, list[int]] | None:
    """Sum over stages of the latest recorded duration of each (``stage_times.tsv``)."""
    path = expdir / "stage_times.tsv"
    if not path.exists():
        return None
    latest: dict[int, float] = {}
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 2:
            try:
                latest[int(fields[0])] = float(fields[1])
            except ValueError:
                continue
    if not latest:
        return None
    return sum(latest.values()), sorted(latest)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    """git of the code that made the result (this package's checkout), else of the cwd."""
    for cwd in (Path(__file__).resolve().parent, None):
        try:
            out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                                 cwd=cwd)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0:
            return out.stdout.strip()
    return "unknown"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment_lines(command: str, wall: tuple[float, list[int]] | None) -> list[str]:
    import os

    dirty = _git("status", "--porcelain", "--untracked-files=no")
    lines = [
        f"- date: `{time.strftime('%a %b %d %H:%M:%S %Z %Y')}`",
        f"- python version: `{sys.version.split()[0]}`",
        f"- espnet version: `espnet {_version('espnet')}`",
        f"- pytorch version: `pytorch {_version('torch')}`",
        f"- espnet-prune version: `{_version('espnet-prune')}`",
        f"- Git hash: `{_git('rev-parse', 'HEAD')}`"
        + (" (with uncommitted changes)" if dirty not in ("", "unknown") else ""),
        f"  - Commit date: `{_git('log', '-1', '--format=%cd')}`",
        f"- machine: `{_cpu_name()}`, {os.cpu_count()} CPU threads visible",
    ]
    if command:
        lines.append(f"- command: `{command}`")
    if wall is not None:
        seconds, stages = wall
        lines.append(
            f"- wall time: {seconds / 60:.1f} min (stages {','.join(map(str, stages))}; "
            "latest run of each stage, from exp/stage_times.tsv)"
        )
    return lines


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def render_markdown(title, scores, details, test_sets, command, wall, macro=None) -> str:
    out = ["<!-- Generated by the make_results command of espnet-prune -->"]
    out.append(f"# RESULTS{': ' + title if title else ''}")
    out.append("## Environments")
    out.extend(environment_lines(command, wall))
    out.append("")
    out.append("## Summary (DER %, collar 0, overlap scored; params/MACs of the WavLM only)")
    header = "|model|" + "|".join(f"{d} DER|{d} JER" for d in test_sets)
    if macro is not None:
        header += "|macro DER|macro JER"
    out.append(header + "|params|MACs/s|CPU speed-up|order|")
    out.append("|---" * (1 + 2 * (len(test_sets) + (macro is not None)) + 4) + "|")
    for name, per_set in scores.items():
        info = details[name]
        cells = [f"{_pct(per_set[d]['der'])}|{_pct(per_set[d]['jer'])}" for d in test_sets]
        if macro is not None:
            cells.append(f"{_pct(macro[name].get('der'))}|{_pct(macro[name].get('jer'))}")
        params = f"{info['params'] / 1e6:.3f}M" if info["params"] else "-"
        macs = f"{info['macs_per_second'] / 1e9:.3f}G" if info["macs_per_second"] else "-"
        speedup = f"{info['speedup']:.2f}x" if info.get("speedup") else "-"
        order = ORDERS[info["pruning"]["order"]] if info.get("pruning") else "-"
        out.append(f"|{name}|{'|'.join(cells)}|{params}|{macs}|{speedup}|{order}|")
    out.append("")
    if any(info.get("pruning") for info in details.values()):
        out.append("order: fine-tune -> prune = the teacher's WavLM pruned (the paper's); "
                   "prune -> fine-tune = the pre-trained WavLM pruned on unlabelled audio, "
                   "then fine-tuned (the earlier order of DPHuBERT).")
        out.append("")
    if macro is not None:
        out.append(f"macro: mean over the {len(test_sets)} test sets, each counted once "
                   "whatever its length.")
        out.append("")
    if any(info.get("speed") for info in details.values()):
        out.append("CPU speed: WavLM forward time per second of audio (wavlm_bench), "
                   "speed-up relative to the teacher's WavLM.")
        out.append("")
    for info in details.values():
        out.append(f"## {info['dir']}")
        out.append(info["description"])
        out.append("### DER")
        out.append("|dataset|DER|Miss|FA|Conf|JER|")
        out.append("|---|---|---|---|---|---|")
        for dset in test_sets:
            o = info["sets"][dset]
            out.append(
                f"|{dset}|{_pct(o.get('der'))}|{_pct(o.get('miss'))}|"
                f"{_pct(o.get('false_alarm'))}|{_pct(o.get('confusion'))}|{_pct(o.get('jer'))}|"
            )
        if info.get("speed"):
            out.append("")
            out.append(f"WavLM: {info['params']} params, {info['macs_per_second'] / 1e9:.4f} "
                       f"GMACs/s, {1000 * info['speed']:.1f} ms CPU per second of audio")
        out.append("")
    return "\n".join(out)


# plot colours: the two pruning orders apart, the unpruned models in their own
PLOT_STYLE = {
    "fbank": ("tab:gray", "s"),
    "teacher": ("black", "*"),
    "teacher_nopretrain": ("tab:gray", "*"),
    "finetuned": ("tab:blue", "o"),
    "pretrained": ("tab:orange", "^"),
}


def plot_results(scores: dict, details: dict, test_sets: list[str], macro: dict | None,
                 path: str | Path, title: str = "") -> Path:
    """DER against the WavLM's MACs per second of audio, one marker per model, one panel per
    test set (and the macro average): fine-tune -> prune and prune -> fine-tune in two
    colours.  The fbank baseline has no WavLM: it sits at 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = [(dset, {n: scores[n][dset]["der"] for n in scores}) for dset in test_sets]
    if macro is not None:
        panels.append(("macro average",
                       {n: macro[n]["der"] for n in macro if macro[n].get("der") is not None}))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (panel, ders) in zip(axes[0], panels):
        labelled = set()
        for name, der in ders.items():
            info = details[name]
            kind = info["pruning"]["order"] if info.get("pruning") else name
            colour, marker = PLOT_STYLE.get(kind, ("tab:green", "D"))
            label = ORDERS.get(kind, name)
            ax.scatter(info["macs_per_second"] / 1e9, 100 * der, color=colour, marker=marker,
                       s=60, label=None if label in labelled else label)
            labelled.add(label)
            ax.annotate(name, (info["macs_per_second"] / 1e9, 100 * der), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("WavLM GMACs per second of audio", fontsize=8)
        ax.set_ylabel("DER (%)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # long tick labels must not collide
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    if title:
        import textwrap

        fig.suptitle(textwrap.fill(title, 12 * len(panels) + 40), fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def make_results(expdir: str | Path, models: list[str], test_sets: list[str],
                 inference_tag: str = "decode", output_json: str | Path | None = None,
                 output_md: str | Path = "RESULTS.md", title: str = "", command: str = "",
                 macro: bool = False, plot: str | Path | None = None) -> Path:
    """Write ``output_json`` (default ``<expdir>/scores.json``) and ``output_md``, with
    ``macro`` also ``<expdir>/macro_der.json``, with ``plot`` the DER/MACs figure there;
    returns the JSON's path."""
    from espnet_prune.utils.datadir import write_text
    from espnet_prune.utils.io import check_output_file

    expdir = Path(expdir)
    output_json = Path(output_json) if output_json else expdir / "scores.json"
    check_output_file(output_json, make_parents=True)  # fail before collecting, not after
    check_output_file(output_md, make_parents=True)
    scores, details = collect(expdir, models, test_sets, inference_tag)
    averages = macro_average(scores, test_sets) if macro else None
    markdown = render_markdown(
        title, scores, details, test_sets, command, stage_wall_time(expdir), averages,
    )
    # atomic: a failed run leaves the previous (complete) files, never truncated ones
    write_text(output_json, json.dumps(scores, indent=2) + "\n", make_parents=True)
    write_text(output_md, markdown + "\n", make_parents=True)
    if averages is not None:
        write_text(expdir / "macro_der.json", json.dumps(averages, indent=1) + "\n")
    if plot:
        plot_results(scores, details, test_sets, averages, plot, title)
    return output_json
