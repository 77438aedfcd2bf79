import zlib

import pytest
import torch
from wavlm_testutils import randomize_

from espnet_prune.wavlm import WavLM, wavlm_config


@pytest.fixture
def tiny_model():
    return randomize_(WavLM(wavlm_config("tiny"))).eval()


@pytest.fixture
def seed(request, record_property) -> int:
    """The test's fixed seed (crc32 of its id), set on torch's global RNG."""
    value = zlib.crc32(request.node.name.encode())
    torch.manual_seed(value)
    record_property("seed", value)
    return value
