"""Class balancing for training: inverse-frequency loss weights or a class-balanced sampler."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import WeightedRandomSampler


def class_counts(labels: Sequence[int], num_classes: int) -> list[int]:
    """Samples per class."""
    counts = [0] * num_classes
    for label in labels:
        counts[label] += 1
    return counts


def class_weights(labels: Sequence[int], num_classes: int) -> torch.Tensor:
    """Inverse-frequency loss weights n / (classes_present * count), so every present class weighs the same in all.

    A class without training samples gets weight 1 (it never occurs as a target).
    """
    counts = class_counts(labels, num_classes)
    present = sum(1 for c in counts if c)
    total = sum(counts)
    return torch.tensor([total / (present * c) if c else 1.0 for c in counts], dtype=torch.float32)


def balanced_sampler(labels: Sequence[int], num_classes: int, seed: int) -> WeightedRandomSampler:
    """Draws len(labels) samples with replacement, each class equally likely; the order depends only on `seed`.

    It replaces shuffling: an epoch sees some images of small classes several times and some of large ones never.
    """
    counts = class_counts(labels, num_classes)
    weights = torch.tensor([1.0 / counts[label] for label in labels], dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(weights, num_samples=len(labels), replacement=True, generator=generator)
