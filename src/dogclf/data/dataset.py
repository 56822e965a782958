"""Torch datasets and loaders over discovered samples."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from dogclf.data.discovery import Sample
from dogclf.data.images import DecodeOptions, decode_image
from dogclf.system import cpu_count


class ImageDataset(Dataset):
    """(tensor, label) pairs: decode with the shared decoder, then apply `transform`."""

    def __init__(self, samples: Sequence[Sample], transform: Callable, decode: DecodeOptions) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.decode = decode

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[index]
        return self.transform(decode_image(sample.path, self.decode)), sample.label


def default_workers(requested: int | None) -> int:
    """Requested count, else min(4, cpus) (0 on single-core machines)."""
    if requested is not None:
        return requested
    cpus = cpu_count()
    return 0 if cpus < 2 else min(4, cpus)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    workers: int,
    seed: int,
    pin_memory: bool = False,
    sampler: torch.utils.data.Sampler | None = None,
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
        drop_last=False,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )
