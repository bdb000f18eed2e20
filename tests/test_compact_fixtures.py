"""The compact golden-fixture loader (vcframe.testing.rtvc): int8 grid values, raw entries, SplitMix64 entries."""

from __future__ import annotations

import json

import numpy as np
import torch
from safetensors.torch import save_file

from vcframe.testing import load_compact_state, load_rtvc_state, splitmix64_int8


def test_splitmix64_matches_the_hifigan_readme_test_vectors():
    # ../shared/hifigan/fixtures/README.md section 3.2
    first = splitmix64_int8(3101, 2, (32, 1, 5, 1))
    assert first.shape == (32, 1, 5, 1) and first.dtype == np.int8
    assert first.reshape(-1)[:10].tolist() == [63, -84, -118, 24, 62, -106, -100, 85, 127, 85]
    second = splitmix64_int8(3102, 1, (10,))
    assert second.tolist() == [-82, -114, -57, -72, 100, -42, 48, 37, 83, -31]
    values = splitmix64_int8(7, 3, (5000,))
    assert values.min() >= -127 and values.max() <= 127


def test_load_compact_state_reads_every_entry_kind_in_key_order(tmp_path):
    grid = torch.tensor([[1, -2], [127, -127]], dtype=torch.int8)
    tensors = {
        "q/a.weight": grid,
        "k/a.weight": torch.tensor(3, dtype=torch.int32),
        "raw/a.steps": torch.tensor([4, 5], dtype=torch.int64),
        "s/b.weight_v": torch.tensor([3101, 2, 32, 1, 5, 1], dtype=torch.int64),
        "k/b.weight_v": torch.tensor(8, dtype=torch.int32),
    }
    keys = ["b.weight_v", "a.weight", "a.steps"]
    path = tmp_path / "compact.safetensors"
    save_file(tensors, str(path), metadata={"state_dict_keys": json.dumps(keys), "checkpoint_key": "mpd"})
    state, metadata = load_compact_state(path)
    assert list(state) == keys and metadata["checkpoint_key"] == "mpd"
    assert torch.equal(state["a.weight"], grid.float() / 8)
    assert torch.equal(state["a.steps"], torch.tensor([4, 5]))
    expected = torch.from_numpy(splitmix64_int8(3101, 2, (32, 1, 5, 1))).float() * 2.0**-8
    assert state["b.weight_v"].dtype == torch.float32 and torch.equal(state["b.weight_v"], expected)
    assert list(load_rtvc_state(path)) == keys
