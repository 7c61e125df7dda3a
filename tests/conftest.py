"""Shared fixtures of the simulator-free tests."""

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small models train fastest on one thread (and the 2-core CI box is shared); restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
