"""Torch datasets and loaders over discovered samples."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from dogclf.data.discovery import Sample
from dogclf.data.images import DecodeOptions, decode_image
from dogclf.system import cpu_count


class ImageDataset(Dataset):
    """(tensor, label) pairs: decode with the shared decoder, then apply `transform`.

    With `seed` set, the random transform of sample i draws from its own generator seeded by (seed, i), so
    augmentation does not depend on which process (main or DataLoader worker) loads the sample, nor on the
    number of workers; the calling process's random state is left as it was.
    """

    def __init__(
        self, samples: Sequence[Sample], transform: Callable, decode: DecodeOptions, seed: int | None = None
    ) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.decode = decode
        self.seed = seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[index]
        image = decode_image(sample.path, self.decode)
        if self.seed is None:
            return self.transform(image), sample.label
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, index))
            return self.transform(image), sample.label


def sample_seed(seed: int, index: int) -> int:
    """The augmentation seed of sample `index` under the loader seed `seed`."""
    return (seed * 6_364_136_223_846_793_005 + index * 1_442_695_040_888_963_407) % (1 << 63)


def train_batches(size: int, batch_size: int) -> tuple[int, bool]:
    """Batches per epoch over `size` images, and whether to drop the last one: a batch of one breaks BatchNorm."""
    drop = size > 1 and size % batch_size == 1
    return (size // batch_size if drop else -(-size // batch_size)), drop


def default_workers(requested: int | None) -> int:
    """Requested count, else min(4, cpus) (0 on single-core machines)."""
    if requested is not None:
        return requested
    cpus = cpu_count()
    return 0 if cpus < 2 else min(4, cpus)


def loader_workers(requested: int, size: int, batch_size: int) -> int:
    """Workers worth starting for one pass over `size` samples: at most one per batch, none for a single batch.

    A single batch is decoded by one process either way; the main process does it without starting workers.
    """
    batches = -(-size // batch_size)
    return 0 if batches <= 1 else min(requested, batches)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    workers: int,
    seed: int,
    pin_memory: bool = False,
    sampler: torch.utils.data.Sampler | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A loader whose order and worker seeds depend only on `seed` (reproducible, resumable)."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=workers,
        generator=generator,
        pin_memory=pin_memory,
        drop_last=drop_last,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )
