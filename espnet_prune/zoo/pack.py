"""Pack a trained model to share it: one archive with everything inference needs and a card.

The archive is made by ESPnet's own packer (:func:`espnet2.main_funcs.pack_funcs.pack`, the
one behind ``espnet2.bin.pack diar``), so ESPnet's ``unpack`` and ``espnet_model_zoo`` read
it: a ``meta.yaml`` names ``train_config``, ``model_file`` and ``inference_config``.
``espnet2.bin.pack diar`` itself takes only ``--train_config`` and ``--model_file`` (other
files go in as ``--option`` and are then not named in ``meta.yaml``, so a recipient could not
tell the inference settings from the rest); the library function takes any named files, which
is what is used here. Layout::

    README.md                     model card (Hugging Face front matter)
    meta.yaml                     ESPnet's: which file is which
    exp/<name>/config.yaml        the training config (builds the model)
    exp/<name>/<model>.pth        the weights (or model.onnx)
    exp/<name>/inference.yaml     the inference settings the model was scored with
    exp/<name>/RESULTS.md         the recipe's results, when given
    exp/<name>/files/...          speaker-embedding checkpoint / PLDA named by inference.yaml

The file paths inside ``inference.yaml`` are relative to its folder (``files/...``);
:func:`espnet_prune.infer.run.load_inference_config` finds them there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from espnet_prune.errors import ConfigError

ARCHIVE_FORMATS = (".zip", ".tar.gz", ".tgz")
# released files that the packed inference config may name, and their licences
KNOWN_FILE_LICENCES = {
    "wespeaker": "pyannote/wespeaker-voxceleb-resnet34-LM (CC-BY-4.0, attribution: "
                 "WeSpeaker, Wang et al. 2023; pyannote.audio)",
}


@contextlib.contextmanager
def _working_directory(path: Path):
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)


def packed_inference_config(inference_config: str | None, folder: Path) -> tuple[dict, list]:
    """The inference mapping with the files it names copied into ``folder/files`` (paths made
    relative to ``folder``); returns it and the copied files' original paths."""
    from espnet_prune.infer.run import config_files, load_inference_config

    conf = load_inference_config(inference_config)  # relative paths already resolved
    copied = []
    for holder, key in config_files(conf):
        source = Path(holder[key])
        if not source.exists():
            raise ConfigError(f"{inference_config}: {key} {source} does not exist")
        relative = Path("files") / f"{key}_{source.name}"
        _copy(source, folder / relative)
        holder[key] = str(relative)
        copied.append(str(source))
    return conf, copied


def _scores_of(scores: str | None, name: str) -> tuple[dict, dict]:
    """This model's entry of ``scores.json`` and the teacher's (its size is the reference of
    the sparsity)."""
    if scores is None or not Path(scores).is_file():
        return {}, {}
    from espnet_prune.eval.results import read_json

    table = read_json(Path(scores))
    return table.get(name, {}), table.get("teacher", {})


def model_card(name: str, files: dict, scores: dict, teacher: dict, corpus: str | None,
               command: str | None, licence: str, copied: list[str], archive_name: str) -> str:
    """The README.md of a packed model: task, corpus, size, DER table, use, training."""
    first = next(iter(scores.values()), {})
    params, macs = first.get("params"), first.get("macs_per_second")
    teacher_params = next(iter(teacher.values()), {}).get("params")
    lines = [
        "---", f"license: {licence}", "library_name: espnet",
        "tags: [espnet, espnet-prune, audio, speaker-diarization, wavlm, pruning]", "---", "",
        f"# {name}: powerset EEND speaker diarization (espnet-prune)", "",
        "- task: speaker diarization (who spoke when), end-to-end powerset segmentation in "
        "sliding windows + speaker embeddings + clustering",
        f"- corpus: {corpus or 'see the training command below'}",
    ]
    if params:
        lines.append(f"- WavLM: {params / 1e6:.3f} M parameters, {macs / 1e9:.3f} GMACs per "
                     "second of audio")
        if teacher_params and name != "teacher":
            lines.append(f"- sparsity: {1 - params / teacher_params:.1%} of the teacher's "
                         f"WavLM parameters removed ({teacher_params / 1e6:.3f} M)")
    elif scores:
        lines.append("- frontend: filter bank (no WavLM)")
    if scores:
        lines += ["", "## Results (DER %, as scored by the recipe)", "",
                  "|test set|DER|JER|", "|---|---|---|"]
        for test_set, entry in scores.items():
            jer = entry.get("jer")
            lines.append(f"|{test_set}|{100 * entry['der']:.2f}|"
                         f"{'-' if jer is None else f'{100 * jer:.2f}'}|")
    lines += [
        "", "## Use", "", "```python", "from espnet_prune import Diarizer", "",
        f'diarizer = Diarizer.from_pretrained("{archive_name}")  # or the unpacked folder',
        'annotation = diarizer("meeting.wav")  # pyannote.core.Annotation',
        'annotation.write_rttm(open("meeting.rttm", "w"))', "```", "",
        "Command line (after unpacking; `inference.yaml` beside the model is the default):", "",
        "```sh",
        f"diar_inference --model_file {files['model_file']} --train_config "
        f"{files['train_config']} --audio meeting.wav --output_dir out",
        "```", "",
        "Needs `pip install espnet-prune` (https://github.com/espnet/espnet; the plugin "
        "registers its frontend and s3prl upstream in ESPnet and s3prl).",
        "", "## Training", "",
    ]
    if command:
        lines += ["Made in the recipe folder (`egs2/<corpus>/diar1`) by:", "", "```sh",
                  command, "```"]
    else:
        lines.append("See RESULTS.md.")
    lines += ["", "## Files", ""]
    lines += [f"- `{key}`: `{value}`" for key, value in files.items() if value]
    if copied:
        lines += ["", "Files named by `inference.yaml`, copied from: " + ", ".join(
            f"`{Path(path).name}`" for path in copied) + "."]
        for key, text in KNOWN_FILE_LICENCES.items():
            if any(key in path.lower() for path in copied):
                lines.append(f"Speaker-embedding model: {text}.")
    lines += ["", "## Licence", "", f"{licence} (the model weights and this card)."]
    return "\n".join(lines) + "\n"


def pack_model(model_dir: str, output: str, name: str | None = None,
               model_file: str | None = None, inference_config: str | None = None,
               scores: str | None = None, results: str | None = None,
               corpus: str | None = None, command: str | None = None,
               licence: str = "cc-by-4.0") -> Path:
    """Pack the model of ``model_dir`` (an exp dir) into ``output`` (``.zip``, ``.tar.gz``,
    ``.tgz``), see the module docstring. ``model_file`` defaults to the exp dir's (e.g.
    ``valid.loss.ave.pth``; an ``.onnx`` file from ``diar_export`` works too),
    ``inference_config`` to its stored ``inference.yaml``, ``scores`` to
    ``<model_dir>/../scores.json`` (DER, size); ``command`` is the training command shown on
    the card. The archive is written whole or not at all."""
    import yaml
    from espnet2.main_funcs.pack_funcs import pack

    from espnet_prune.infer.run import default_inference_config
    from espnet_prune.zoo.pretrained import folder_files

    model_dir, output = Path(model_dir), Path(output)
    if not output.name.endswith(ARCHIVE_FORMATS):
        raise ConfigError(f"{output}: the archive name must end in {', '.join(ARCHIVE_FORMATS)}")
    found = folder_files(model_dir)  # config.yaml + model file, or a ConfigError
    model_file = Path(model_file or found["model_file"])
    if not model_file.is_file():
        raise ConfigError(f"{model_file}: model file does not exist")
    if inference_config is None:
        inference_config = default_inference_config(str(model_file), found["train_config"])
    name = name or model_dir.name
    if scores is None and (model_dir.parent / "scores.json").is_file():
        scores = str(model_dir.parent / "scores.json")
    own_scores, teacher_scores = _scores_of(scores, name)

    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{name}.") as staging:
        staging = Path(staging)
        folder = Path("exp") / name
        _copy(Path(found["train_config"]), staging / folder / "config.yaml")
        _copy(model_file, staging / folder / model_file.name)
        conf, copied = packed_inference_config(inference_config, staging / folder)
        header = ("# inference settings of this model (espnet_prune.infer.pipeline."
                  "InferenceConfig fields, embedding, clustering); file paths are relative "
                  "to this folder\n")
        (staging / folder / "inference.yaml").write_text(
            header + (yaml.safe_dump(conf, sort_keys=False) if conf else "{}\n"))
        files = {"train_config": str(folder / "config.yaml"),
                 "model_file": str(folder / model_file.name),
                 "inference_config": str(folder / "inference.yaml")}
        option = [str(folder / "files")] if copied else []
        if results is not None:
            if not Path(results).is_file():
                raise ConfigError(f"{results}: results file does not exist")
            _copy(Path(results), staging / folder / "RESULTS.md")
            option.append(str(folder / "RESULTS.md"))
        card = model_card(name, files, own_scores, teacher_scores, corpus, command, licence,
                          copied, output.name)
        (staging / "README.md").write_text(card, encoding="utf-8")
        option.append("README.md")
        partial = staging / f"partial{''.join(output.suffixes[-2:]) or output.suffix}"
        if output.name.endswith(".tgz"):
            partial = staging / "partial.tgz"
        with open(os.devnull, "w") as null, _working_directory(staging), \
                contextlib.redirect_stdout(null):  # ESPnet prints a line per file
            pack(files={"model_file": files["model_file"]},
                 yaml_files={"train_config": files["train_config"],
                             "inference_config": files["inference_config"]},
                 outpath=partial.name, option=option)
        os.replace(partial, output)
    summary = {"archive": str(output), "model": name, "files": files, "copied": copied}
    print(json.dumps(summary))
    return output


def export_and_pack(model_file: str, train_config: str, output: str, quantize: str = "none",
                    pack: str | None = None, inference_config: str | None = None) -> dict:
    """``diar_export``: the ONNX file (:func:`espnet_prune.infer.export.export_model_file`)
    and, with ``pack``, an archive of it as :func:`pack_model` makes one (``model.onnx`` in
    place of the weights, the exp dir's ``config.yaml`` and ``inference.yaml``, the card);
    ``Diarizer.from_pretrained`` runs such an archive in onnxruntime."""
    from espnet_prune.infer.export import export_model_file

    report = export_model_file(model_file, train_config, output, quantize)
    if pack is not None:
        report["archive"] = str(pack_model(str(Path(train_config).parent), pack,
                                           model_file=output, inference_config=inference_config))
    return report
