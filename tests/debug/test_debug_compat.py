"""The numpy-2 fix for smdebug's tensor writer: needed, applied, and writing the right bytes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from dogclf.debug import compat


def test_unpatched_smdebug_writer_fails_exactly_when_the_fix_says_it_is_needed():
    code = (
        "import numpy as np\n"
        "from smdebug.core.tfevent.util import make_tensor_proto\n"
        "make_tensor_proto(np.zeros(3, np.float32), 'w')\n"
        "print('wrote')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)  # unpatched
    if compat.needs_fix():
        assert out.returncode != 0 and "tostring" in out.stderr, out.stderr
    else:
        assert out.returncode == 0 and out.stdout.strip() == "wrote", out.stderr


def test_fix_replaces_the_writer_function_and_round_trips_through_a_trial(tmp_path):
    compat.apply()
    compat.apply()  # idempotent
    import smdebug.core.tfevent.util as util
    import smdebug.core.writer as writer
    from smdebug.trials import create_trial

    if compat.needs_fix():
        assert writer.make_tensor_proto is compat._make_tensor_proto
        assert util.make_tensor_proto is compat._make_tensor_proto
    import smdebug.pytorch as smd
    import torch

    layer = torch.nn.Linear(4, 3)
    hook = smd.Hook(out_dir=str(tmp_path), save_config=smd.SaveConfig(save_interval=1),
                    include_collections=["weights"], export_tensorboard=False)  # fmt: skip
    hook.register_module(layer)
    layer(torch.randn(2, 4))
    hook.close()
    saved = create_trial(str(tmp_path)).tensor("Linear_weight").value(0)
    np.testing.assert_array_equal(saved, layer.weight.detach().numpy())


def test_proto_holds_the_array_bytes_and_strings():
    proto = compat._make_tensor_proto(np.array([[1.5, -2.0]], dtype=np.float32), "x")
    assert proto.tensor_content == np.array([[1.5, -2.0]], dtype=np.float32).tobytes()
    assert [d.size for d in proto.tensor_shape.dim] == [1, 2]
    assert list(compat._make_tensor_proto(np.array(["a", "b"]), "s").string_val) == [b"a", b"b"]
