import pytest

from .trained_model import train_exp_dir


@pytest.fixture(scope="session")
def trained_exp(tmp_path_factory):
    return train_exp_dir(tmp_path_factory.mktemp("trained"))
