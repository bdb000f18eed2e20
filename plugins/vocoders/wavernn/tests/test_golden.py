"""Golden tests against RTVC's own outputs (../shared/rtvc/fixtures, tolerances from its README section 7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from vcframe_wavernn.data import collate, make_item
from vcframe_wavernn.model import WaveRNNVocoder
from vcframe_wavernn.signal import decode_mu_law, encode_mu_law, fold_with_overlap, xfade_and_unfold
from vcframe_wavernn.spec import WaveRNNConfig

from vcframe.specs import RTVC_SYNTHESIZER_MEL
from vcframe.testing import load_rtvc_state
from vcframe.testing.golden import WAVEFORM_ATOL
from vcframe.types import Mel


@pytest.fixture(scope="module")
def ref(fixtures_dir):
    return load_file(str(fixtures_dir / "vocoder_ref.safetensors"))


@pytest.fixture(scope="module")
def features(fixtures_dir):
    return load_file(str(fixtures_dir / "features_ref.safetensors"))


@pytest.fixture(scope="module")
def vocoder(fixtures_dir):
    return WaveRNNVocoder(WaveRNNConfig(checkpoint=str(fixtures_dir / "vocoder.pt")))


def test_rtvc_checkpoint_loads_strict_and_matches_compact_weights(vocoder, fixtures_dir):
    compact = load_rtvc_state(fixtures_dir / "vocoder_weights.safetensors")
    state = vocoder.network.state_dict()
    assert list(compact) == list(state)
    for name, value in state.items():
        assert torch.equal(value, compact[name].to(value.dtype)), name


def test_upsample_logits_and_loss(vocoder, ref):
    network = vocoder.network.eval()
    with torch.no_grad():
        upsampled, aux = network.upsample(ref["collate_mels"])
        assert (upsampled - ref["upsample_mels"]).abs().max() <= 1e-5
        assert (aux - ref["upsample_aux"]).abs().max() <= 1e-5
        logits = network(ref["collate_x"], ref["collate_mels"])
        assert (logits - ref["forward_eval_logits"]).abs().max() <= 1e-5
        loss = F.cross_entropy(logits.transpose(1, 2).unsqueeze(-1), ref["collate_y"].unsqueeze(-1))
        assert torch.allclose(loss, ref["forward_loss_eval"], rtol=1e-5, atol=0)
    import copy

    train_copy = copy.deepcopy(network).train()
    with torch.no_grad():
        logits = train_copy(ref["collate_x"], ref["collate_mels"])
    assert (logits - ref["forward_trainmode_logits"]).abs().max() <= 5e-5


def test_fold_and_crossfade_exact(ref):
    for case in ("fold_example", "fold_random"):
        target, overlap = int(ref[f"{case}.target"]), int(ref[f"{case}.overlap"])
        folded = fold_with_overlap(ref[f"{case}.x"], target, overlap)
        assert torch.equal(folded, ref[f"{case}.folded"])
    folded = ref["fold_random.folded"][:, :, 0].numpy().astype(np.float64)
    unfolded = xfade_and_unfold(folded, int(ref["fold_random.target"]), int(ref["fold_random.overlap"]))
    assert np.array_equal(unfolded, ref["fold_random.xfade_and_unfold_ch0"].numpy())


def test_mu_law_and_dataset_item_and_collate(ref, features):
    labels = encode_mu_law(features["voc_preemph_wav"].numpy(), 512)
    assert np.array_equal(labels, features["voc_mulaw_labels_9bit"].numpy())  # integers: exact everywhere
    decoded = decode_mu_law(2 * labels / 511 - 1, 512)  # numpy's vectorised power differs by CPU in the last bit
    assert decoded.shape == features["voc_decode_mulaw_from_labels"].shape
    assert np.abs(decoded - features["voc_decode_mulaw_from_labels"].numpy()).max() <= WAVEFORM_ATOL
    item = make_item("wav", features["wav_16k"].numpy(), features["syn_mel_80"].numpy(), RTVC_SYNTHESIZER_MEL, 9)
    assert np.array_equal(item.mel, ref["dataset_item_mel"].numpy())
    assert np.array_equal(item.labels, ref["dataset_item_quant"].numpy())
    np.random.seed(3)
    offsets = [np.random.randint(0, 186) for _ in range(2)]
    x, y, mels = collate([item, item], offsets, 1000, 200, 2, 9)
    assert (
        torch.equal(x, ref["collate_x"]) and torch.equal(y, ref["collate_y"]) and torch.equal(mels, ref["collate_mels"])
    )


@pytest.mark.parametrize("engine", ["cpp", "cpp-2-threads", "torch"])
@pytest.mark.parametrize("name", ["short_unbatched_argmax", "short_batched_t2000_o400_sampled"])
def test_generation_matches_rtvc(ref, fixtures_dir, name, engine):
    threads = 2 if engine == "cpp-2-threads" else None
    engine = engine.removesuffix("-2-threads")
    if engine == "cpp":
        from vcframe_wavernn.kernel import load_kernel

        if load_kernel() is None:
            pytest.skip("no C++ compiler: the kernel cannot be built here")
    prefix = f"gen.{name}."
    config = WaveRNNConfig(
        checkpoint=str(fixtures_dir / "vocoder.pt"),
        batched=bool(ref[prefix + "batched"]),
        target=int(ref[prefix + "target"]),
        overlap=int(ref[prefix + "overlap"]),
        sampler="argmax" if bool(ref[prefix + "argmax"]) else "sample",
        precision="float32",  # RTVC's arithmetic and random stream, not the fast defaults
        engine=engine,
        threads=threads,
    )
    seed = int(ref[prefix + "seed"])
    mel = Mel(ref[prefix + "mel_in"] * 4, RTVC_SYNTHESIZER_MEL)  # the vocoder divides by 4 itself
    output = WaveRNNVocoder(config).generate_float64(mel, seed=None if seed < 0 else seed)[0]
    expected = ref[prefix + "wav"].numpy()
    assert output.shape == (mel.frames.shape[-1] * 200,)
    assert np.abs(output[: len(expected)] - expected).max() <= WAVEFORM_ATOL
    assert not output[len(expected) :].any()
