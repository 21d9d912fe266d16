import os

import pytest
import torch

# Keep tests reproducible and fair to the 2-core machine: one intra-op thread per worker.
torch.set_num_threads(int(os.environ.get("MATHML_TEST_THREADS", "1")))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
