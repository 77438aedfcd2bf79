"""espnet-prune: fine-tune-before-prune structured pruning of WavLM for EEND diarization.

ESPnet is deliberately *not* in ``install_requires``: ESPnet 202511's own metadata pulls a
different torch build, so a plain ``pip install -e .`` would replace the pinned torch.  The
pinned environment (ESPnet installed ``--no-deps`` plus an explicit runtime list) is made by
``tools/`` (see ``tools/requirements.txt``).
"""

from setuptools import find_packages, setup

CONSOLE_SCRIPTS = [
    f"espnet-prune-{name.replace('_', '-')}=espnet_prune.bin.{name}:main"
    for name in (
        "wavlm_convert",
        "wavlm_prune",
        "wavlm_stats",
        "wavlm_bench",
        "diar_train",
        "wavlm_pretrain",
        "diar_prune",
        "diar_inference",
        "diar_export",
        "diar_score",
        "diar_bench",
    )
]

setup(
    name="espnet-prune",
    version="0.1.0",
    description="Fine-tune before structured pruning of WavLM for end-to-end neural diarization",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["espnet_prune", "espnet_prune.*"]),
    # Light, torch-agnostic requirements only; torch/torchaudio/espnet come from tools/.
    install_requires=[
        "numpy",
        "soundfile",
        "pyyaml",
        "tqdm",
    ],
    # diar_export and diar_inference --backend onnxruntime (versions: tools/requirements.txt)
    extras_require={"test": ["pytest", "ruff"], "onnx": ["onnx", "onnxruntime"]},
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
    license="Apache-2.0",
)
