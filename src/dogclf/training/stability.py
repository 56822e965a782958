"""Unstable epochs: a valid loss that jumps several-fold from one epoch to the next (torch-free)."""

from __future__ import annotations

import logging
import math

log = logging.getLogger("dogclf")

JUMP_FACTOR = 3.0
# A jump must also be worth something: a tenth of a uniform guess's loss (ln classes), so 0.003 -> 0.01 is not one.
JUMP_FLOOR = 0.1


def loss_jumps(losses: list[float], num_classes: int) -> list[str]:
    """Each epoch whose valid loss rose above JUMP_FACTOR x the epoch before (by at least JUMP_FLOOR x ln classes)."""
    floor = JUMP_FLOOR * math.log(max(num_classes, 2))
    jumps = []
    for epoch in range(1, len(losses)):
        before, after = losses[epoch - 1], losses[epoch]
        if not (math.isfinite(before) and math.isfinite(after)) or before <= 0:
            continue
        if after > JUMP_FACTOR * before and after - before >= floor:
            jumps.append(
                f"epoch {epoch + 1} valid loss {after:.4g} is {after / before:.1f}x epoch {epoch}'s {before:.4g}"
            )
    return jumps


def warn_jumps(losses: list[float], num_classes: int) -> list[str]:
    """loss_jumps, each logged as a warning."""
    jumps = loss_jumps(losses, num_classes)
    for jump in jumps:
        log.warning("unstable training: %s (a longer lr warmup or a lower lr steadies it)", jump)
    return jumps
