"""Golden tests against RTVC's own outputs (../shared/rtvc/fixtures, README sections 5.3, 6, 7)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from vcframe_tacotron.inference import DecoderStep, packed_bf16_available
from vcframe_tacotron.loss import tacotron_loss
from vcframe_tacotron.model import TacotronSynthesizer
from vcframe_tacotron.spec import SPEC

MEL_ATOL = 1e-5
ATTN_ATOL = 1e-4


@pytest.fixture(scope="module")
def synthesizer(rtvc_synthesizer_pt: Path) -> TacotronSynthesizer:
    # r left at None: the checkpoint's decoder.r (2) is kept, as RTVC's Tacotron.load does
    return TacotronSynthesizer(SPEC.make_config({"preset": "rtvc", "checkpoint": str(rtvc_synthesizer_pt)}))


def _close(actual: torch.Tensor, expected: torch.Tensor, atol: float) -> None:
    assert actual.shape == expected.shape
    worst = (actual - expected).abs().max().item()
    assert worst <= atol, f"{worst:.3g} > {atol:.3g}"


def test_rtvc_checkpoint_loads_strict_with_r_from_checkpoint(synthesizer: TacotronSynthesizer) -> None:
    assert synthesizer.network.r == 2
    assert len(synthesizer.network.state_dict()) == 170


def test_encoder_memory(synthesizer: TacotronSynthesizer, synthesizer_ref: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        seq, proj = synthesizer.network.encode(synthesizer_ref["chars"], synthesizer_ref["speaker_embeds"], 0.0)
    _close(seq, synthesizer_ref["encoder_seq_p0"], MEL_ATOL)
    _close(proj, synthesizer_ref["encoder_seq_proj_p0"], MEL_ATOL)


def test_teacher_forced(synthesizer: TacotronSynthesizer, synthesizer_ref: dict[str, torch.Tensor]) -> None:
    ref = synthesizer_ref
    with torch.no_grad():
        mel_decoder, mel_postnet, attn, stop = synthesizer.network(
            ref["chars"], ref["forward_tf_p0.mels_in"], ref["speaker_embeds"], p=0.0
        )
    _close(mel_decoder, ref["forward_tf_p0.mel_decoder"], MEL_ATOL)
    _close(mel_postnet, ref["forward_tf_p0.mel_postnet"], MEL_ATOL)
    _close(attn, ref["forward_tf_p0.attn"], ATTN_ATOL)
    _close(stop.logit(), ref["forward_tf_p0.stop"].logit(), 1e-4)


def test_train_pipeline_and_loss(synthesizer: TacotronSynthesizer, synthesizer_ref: dict[str, torch.Tensor]) -> None:
    ref = synthesizer_ref
    with torch.no_grad():
        outputs = synthesizer.network(
            ref["train_pipeline.chars"], ref["train_pipeline.mels"], ref["train_pipeline.embeds"], p=0.0
        )
    for name, value in zip(("mel_decoder", "mel_postnet"), outputs[:2], strict=True):
        _close(value, ref[f"train_pipeline.{name}"], MEL_ATOL)
    _close(outputs[2], ref["train_pipeline.attn"], ATTN_ATOL)
    losses = tacotron_loss(
        outputs[0], outputs[1], outputs[3], ref["train_pipeline.mels"], ref["train_pipeline.stop_target"]
    )
    for name in ("m1_loss", "m2_loss", "stop_loss", "loss"):
        torch.testing.assert_close(losses[name], ref[f"train_pipeline.{name}"], rtol=1e-5, atol=0)


#: The fast decoder step (vcframe_tacotron.inference) in bfloat16 against RTVC's float32 outputs: the mels (peak
#: 0.23 with these random weights) measured up to 1.1e-3 off (0.5 % of the peak), the attention (peak 0.16)
#: up to 1.6e-4.
BF16_MEL_ATOL = 2e-3
BF16_ATTN_ATOL = 5e-4

GENERATE_CASES = [("gen_p0", 2, 0.0), ("gen_p0_r1", 1, 0.0), ("gen_dropout", 2, 0.5)]
#: (decoder loop, tolerance of mels, of attention): the plain step (RTVC's arithmetic), the fast step in float32,
#: in bfloat16 on oneDNN's packed weights and in bfloat16 on PyTorch's products (the fallback without oneDNN)
STEPS = {
    "plain": (None, MEL_ATOL, ATTN_ATOL),
    "fast-float32": ((torch.float32, False), MEL_ATOL, ATTN_ATOL),
    "fast-bfloat16-packed": ((torch.bfloat16, True), BF16_MEL_ATOL, BF16_ATTN_ATOL),
    "fast-bfloat16-unpacked": ((torch.bfloat16, False), BF16_MEL_ATOL, BF16_ATTN_ATOL),
}


@pytest.mark.parametrize("loop", list(STEPS))
@pytest.mark.parametrize(("case", "r", "p"), GENERATE_CASES)
def test_generate(
    synthesizer: TacotronSynthesizer, synthesizer_ref: dict[str, torch.Tensor], case: str, r: int, p: float, loop: str
) -> None:
    ref = synthesizer_ref
    network = synthesizer.network
    form, mel_atol, attn_atol = STEPS[loop]
    if form is not None and form[1] and not packed_bf16_available():
        pytest.skip("this torch build has no oneDNN packed bfloat16 linear")
    network.r = r
    try:
        step = None if form is None else DecoderStep(network.decoder, r, form[0], packed=form[1])
        if case == "gen_dropout":
            assert float(ref["gen_dropout.p"]) == p
            torch.manual_seed(int(ref["gen_dropout.seed"]))
        mel_decoder, mel_postnet, attn, lengths = network.generate(
            ref["chars"], ref["speaker_embeds"], steps=int(ref[f"{case}.steps"]), p=p, step=step
        )
    finally:
        network.r = 2
    _close(mel_decoder, ref[f"{case}.mel_decoder"], mel_atol)
    _close(mel_postnet, ref[f"{case}.mel_postnet"], mel_atol)
    _close(attn, ref[f"{case}.attn"], attn_atol)
    assert lengths.tolist() == [mel_postnet.shape[2]] * 2


def test_seeded_synthesize_reproduces_rtvc_dropout_run(
    rtvc_synthesizer_pt: Path, synthesizer_ref: dict[str, torch.Tensor]
) -> None:
    """synthesize(seed=4321) with RTVC behaviour draws the dropout masks exactly as RTVC's generate."""
    from vcframe.specs import GE2E_RTVC_EMBEDDING
    from vcframe.types import SpeakerEmbedding

    config = SPEC.make_config(
        {
            "preset": "rtvc",
            "checkpoint": str(rtvc_synthesizer_pt),
            "masking": "rtvc",
            "inference_dropout": 0.5,
            "max_frames": 60,
            "trim_threshold": None,
            "precision": "float32",
        }
    )
    synthesizer = TacotronSynthesizer(config)
    texts = ["Hello world, this is a test.", "Dr. Smith paid $3.50 on May 2nd, 1999!"]  # = the fixture's chars
    ids = synthesizer.texts_to_ids(texts)
    for row, item in enumerate(ids):
        assert item == synthesizer_ref["chars"][row, : len(item)].tolist()
    embedding = SpeakerEmbedding(synthesizer_ref["speaker_embeds"], GE2E_RTVC_EMBEDDING)
    before = torch.randn(3)
    mel = synthesizer.synthesize(texts, embedding, seed=int(synthesizer_ref["gen_dropout.seed"]))
    after = torch.randn(3)
    assert not torch.equal(before, after)  # the caller's stream moves on; the seeded call forked it
    _close(mel.frames, synthesizer_ref["gen_dropout.mel_postnet"], MEL_ATOL)
    assert mel.lengths.tolist() == [60, 60]
    assert mel.alignment is not None
    _close(mel.alignment, synthesizer_ref["gen_dropout.attn"], ATTN_ATOL)
