"""Debugger-style rules on `smdebug.rules.Rule`, with the parameters and defaults of AWS's built-in rules.

Each rule takes the name of the AWS rule it mirrors. The modules import only smdebug and numpy (no other dogclf
module), so `dogclf.debug.rules_bundle` can join them into one file uploaded as a SageMaker `Rule.custom`
source. Parameters may arrive as strings (SageMaker passes rule parameters as text). Each rule sets `finding`
when it fires, `insufficient()` when it had too little data to decide, and carries a one-line `explanation`
and `advice` for reports.
"""

from __future__ import annotations

from dogclf.debug.rules._common import DogclfRule
from dogclf.debug.rules.classes import ClassImbalance
from dogclf.debug.rules.losses import LossNotDecreasing, Overfit, Overtraining
from dogclf.debug.rules.tensors import AllZero, DeadRelu, ExplodingTensor, PoorWeightInitialization, VanishingGradient

_ORDER = (VanishingGradient, ExplodingTensor, LossNotDecreasing, Overfit, Overtraining, PoorWeightInitialization)
RULES: dict[str, type[DogclfRule]] = {cls.__name__: cls for cls in (*_ORDER, DeadRelu, AllZero, ClassImbalance)}
