"""Reading the RTVC golden-test fixtures (``../shared/rtvc/fixtures``, README section 3.2).

The fixtures ship RTVC's random-weight checkpoints in a compact form: every float weight is an int8 grid
value ``q/<name>`` with a power-of-two exponent ``k/<name>`` (value = q * 2**-k), other tensors are stored
as they are under ``raw/<name>``, and the metadata lists RTVC's state-dict keys in order.
"""

from __future__ import annotations

import json
import os
from typing import Any


def load_rtvc_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A compact ``<model>_weights.safetensors`` -> RTVC's ``model_state`` (float32 tensors, RTVC's key order).

    ``torch.save({"model_state": load_rtvc_state(path)}, "model.pt")`` gives a checkpoint RTVC's inference
    loaders accept.
    """
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata, names = handle.metadata(), set(handle.keys())
        state: dict[str, Any] = {}
        for name in json.loads(metadata["state_dict_keys"]):
            if "q/" + name in names:
                exponent = int(handle.get_tensor("k/" + name))
                state[name] = handle.get_tensor("q/" + name).to(torch.float32) * 2.0**-exponent
            else:
                state[name] = handle.get_tensor("raw/" + name)
    return state
