"""espnet-prune: fine-tune-before-prune structured pruning of WavLM for EEND diarization.

ESPnet is deliberately *not* in ``install_requires``: ESPnet 202511's own metadata pulls a
different torch build, so a plain ``pip install -e .`` would replace the pinned torch.  The
pinned environment (ESPnet installed ``--no-deps`` plus an explicit runtime list) is made by
``tools/`` (see ``tools/requirements.txt``).
"""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

# a start-up line (site-packages/*.pth) that imports espnet_prune, whose only import-time act
# is the cheap post-import hook of espnet_prune.registration: ESPnet's own CLIs
# (espnet2.bin.diar_train ...) and s3prl's hub then see the plugin's frontend and upstream
# without the user importing espnet_prune (ESPNET_PRUNE_NO_PLUGIN=1 turns it off)
PLUGIN_PTH = "espnet_prune_plugin.pth"


class BuildPyWithStartupLine(build_py):
    """build_py that also puts :data:`PLUGIN_PTH` at the wheel's root (= site-packages).
    An editable install does not ship it: tools/install.sh copies it there."""

    def run(self):
        super().run()
        if not getattr(self, "editable_mode", False):
            self.copy_file(PLUGIN_PTH, str(Path(self.build_lib) / PLUGIN_PTH))

# every command line of espnet_prune/bin, as espnet-prune-<name> (python -m espnet_prune.bin.<name>
# works the same)
CONSOLE_SCRIPTS = sorted(
    f"espnet-prune-{path.stem.replace('_', '-')}=espnet_prune.bin.{path.stem}:main"
    for path in Path(__file__).resolve().parent.joinpath("espnet_prune", "bin").glob("*.py")
    if path.stem != "__init__"
)

if __name__ == "__main__":  # pip and setuptools run it as the main module; tests read it
    setup(
        name="espnet-prune",
        version="0.1.0",
        description=("Fine-tune before structured pruning of WavLM for end-to-end neural "
                     "diarization"),
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
        cmdclass={"build_py": BuildPyWithStartupLine},
        license="Apache-2.0",
    )
