#!/usr/bin/env python3
"""Write a randomly initialised WavLM checkpoint from a preset (plus field overrides).

For recipes without a pre-trained WavLM (the embedded mini recipe, CI): the "teacher" is then
fine-tuned from scratch. Real recipes convert a pre-trained checkpoint with
``python -m espnet_prune.bin.wavlm_convert`` instead. The seed makes the file reproducible.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", required=True, help="wavlm_config preset, e.g. tiny")
    parser.add_argument("--overrides", default="{}", help="JSON dict of WavLMConfig fields")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)

    import torch

    from espnet_prune.errors import ConfigError
    from espnet_prune.wavlm import WavLM, save_wavlm, wavlm_config
    from espnet_prune.wavlm.config import override_config

    try:
        overrides = json.loads(args.overrides)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--overrides is not JSON: {args.overrides!r} ({exc})") from None
    if not isinstance(overrides, dict):
        raise ConfigError(f"--overrides must be a JSON dict, got {args.overrides!r}")
    config = override_config(wavlm_config(args.preset), overrides)
    config.validate()
    torch.manual_seed(args.seed)
    model = WavLM(config)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    save_wavlm(model, args.output)
    print(f"wrote {args.output}: preset {args.preset}, {model.num_params()} parameters")
    return 0


if __name__ == "__main__":
    from espnet_prune.utils.cli import run_main

    sys.exit(run_main(main))
