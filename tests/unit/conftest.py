"""Fixtures shared by the unit tests."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """One intra-op thread: on a 2-core machine shared by test processes it is several times faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
