"""A small generated ImageFolder dataset with learnable, breed-named classes (quickstart and tests)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from dogclf.errors import DatasetError

if TYPE_CHECKING:
    import numpy as np

BREEDS = (
    "Affenpinscher",
    "Afghan_hound",
    "Airedale_terrier",
    "Akita",
    "Alaskan_malamute",
    "American_eskimo_dog",
    "American_foxhound",
    "American_staffordshire_terrier",
    "American_water_spaniel",
    "Anatolian_shepherd_dog",
    "Australian_cattle_dog",
    "Australian_shepherd",
    "Australian_terrier",
    "Basenji",
    "Basset_hound",
    "Beagle",
    "Bearded_collie",
    "Beauceron",
    "Bedlington_terrier",
    "Belgian_malinois",
)


def breed_folder(index: int) -> str:
    """'001.Affenpinscher' style folder name for class `index` (0-based)."""
    name = BREEDS[index] if index < len(BREEDS) else f"Breed_{index + 1:03d}"
    return f"{index + 1:03d}.{name}"


def _render(label: int, n_classes: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A textured blob whose hue and stripe angle encode the class, on a noisy background."""
    import numpy as np

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    background = rng.uniform(0.2, 0.8, 3) + rng.normal(0, 0.08, (size, size, 3))
    hue = 2 * np.pi * label / n_classes
    color = 0.5 + 0.45 * np.cos(hue + np.array([0.0, 2.094, 4.189]))
    angle = np.pi * label / n_classes + rng.normal(0, 0.08)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * 5 * (xx * np.cos(angle) + yy * np.sin(angle)))
    cx, cy = rng.uniform(0.35, 0.65, 2)
    rx, ry = rng.uniform(0.22, 0.38, 2)
    mask = (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2) < 1.0
    blob = color * (0.55 + 0.45 * stripes[..., None]) + rng.normal(0, 0.04, (size, size, 3))
    img = np.where(mask[..., None], blob, background)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def make_dataset(
    root: str | Path,
    classes: int = 5,
    per_class: int = 40,
    size: int = 64,
    seed: int = 0,
    eval_per_class: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write root/{train,valid,test}/NNN.Breed/*.jpg (every 7th image a PNG); deterministic for a seed."""
    import numpy as np
    from PIL import Image

    root = Path(root)
    if classes < 2 or per_class < 1 or size < 16:
        raise DatasetError(
            f"make_dataset: need classes >= 2, per_class >= 1, size >= 16 (got {classes}, {per_class}, {size})"
        )
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise DatasetError(
                f"{root} exists and is not empty; choose another folder or replace it (--overwrite, overwrite=True)"
            )
        shutil.rmtree(root)
    n_eval = eval_per_class or max(2, per_class // 4)
    counts = {"train": per_class, "valid": n_eval, "test": n_eval}
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        for split_index, (split, n) in enumerate(counts.items()):
            for label in range(classes):
                folder = tmp / split / breed_folder(label)
                folder.mkdir(parents=True)
                rng = np.random.default_rng([seed, split_index, label])
                for i in range(n):
                    img = Image.fromarray(_render(label, classes, size, rng))
                    stem = f"{breed_folder(label).split('.', 1)[1]}_{i:05d}"
                    if i % 7 == 6:
                        img.save(folder / f"{stem}.png")
                    else:
                        img.save(folder / f"{stem}.jpg", quality=92)
        if root.exists():
            root.rmdir()
        tmp.rename(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
