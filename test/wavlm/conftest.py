import pytest
from wavlm_testutils import randomize_

from espnet_prune.wavlm import WavLM, wavlm_config


@pytest.fixture
def tiny_model():
    return randomize_(WavLM(wavlm_config("tiny"))).eval()
