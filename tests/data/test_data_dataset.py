"""Loader workers: started only where a pass has batches for them."""

from __future__ import annotations

import pytest

from dogclf.data.dataset import loader_workers


@pytest.mark.parametrize(
    ("requested", "size", "batch_size", "expected"),
    [
        (2, 40, 64, 0),  # one batch: the main process decodes it, no worker to start
        (2, 64, 64, 0),
        (2, 65, 64, 2),
        (4, 100, 64, 2),  # two batches: a third and fourth worker would idle
        (2, 300, 32, 2),
        (0, 1000, 8, 0),  # asked for none
        (2, 0, 8, 0),
    ],
)
def test_workers_are_capped_by_the_batches_of_a_pass(requested, size, batch_size, expected):
    assert loader_workers(requested, size, batch_size) == expected
