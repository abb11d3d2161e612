import os

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def tracking_store(tmp_path_factory):
    """Runs made by the tests are tracked in a temporary MLflow store, never in the project's mlruns.db."""
    if "MLFLOW_TRACKING_URI" not in os.environ:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlruns.db'}"
    yield os.environ["MLFLOW_TRACKING_URI"]


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest (and steadiest on a busy machine) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
