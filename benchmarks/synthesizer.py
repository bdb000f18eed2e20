"""Tacotron synthesis speed beside RTVC's own decoder loop: mel frames per second, 1 and 2 threads, batch 1 and 8.

    python benchmarks/synthesizer.py [--threads 1,2] [--frames 200] [--rounds 5] [--presets rtvc,small]
                                     [--batches 1,8]

Weights are random (speed does not depend on them) and the stop head's bias is set to -20 (as in the RTVC
fixtures), so every item runs exactly ``--frames`` frames. Rows, on the same network and the same text:

* ``rtvc``: RTVC's ``Tacotron.generate`` as RTVC runs it (``synthesizer/models/tacotron.py``, SPEC section 2.2),
  its decoder loop transcribed below: ``Decoder.forward`` with the tuple states, ``LSA`` keeping its cumulative
  attention on the module, the full ``mel_proj`` (``n_mels * max_r`` rows) viewed and cut to ``r``, the stop test
  on every step; the encoder and post-net are this plugin's modules run without masking, which compute what RTVC's
  do (the golden tests hold them to RTVC's outputs).
* ``vcframe float32`` / ``vcframe bfloat16``: ``Tacotron.generate`` with the plugin's fast decoder step
  (:mod:`vcframe_tacotron.inference`) at that precision (bfloat16 on oneDNN's packed weights where available).

All rows use RTVC's behaviour (pre-net dropout 0.5, multiplicative pad mask). Rows are timed interleaved: each of
``--rounds`` rounds times every row once (after one warm-up call each), so a busy moment on the shared machine
hits both sides of a ratio; the table gives the median frames/s, the median per-round ratio to the ``rtvc`` row
and the load average range. Idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``, as ``vcframe run`` sets it):
with spinning threads, 2 threads on the loaded 2 cores ran 10-30x slower than 1. Prints the CPU model and its
bfloat16 flags. ``--synthesize`` adds the whole
``TacotronSynthesizer.synthesize`` (text frontend, trim) at the default precision.
"""

from __future__ import annotations

from vcframe.cli import _prefer_passive_openmp_wait

_prefer_passive_openmp_wait()  # idle OpenMP threads sleep, as in `vcframe run` (set before torch loads)

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from vcframe_tacotron.inference import DecoderStep, packed_bf16_available  # noqa: E402
from vcframe_tacotron.model import TacotronSynthesizer  # noqa: E402
from vcframe_tacotron.spec import SPEC  # noqa: E402
from vcframe_tacotron.tacotron import Tacotron  # noqa: E402

from vcframe.cpu import cpu_flags, cpu_has_bf16, cpu_model  # noqa: E402
from vcframe.specs import GE2E_RTVC_EMBEDDING  # noqa: E402
from vcframe.types import SpeakerEmbedding  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog, and then it runs back home again."


def cpu_description() -> str:
    """The CPU model and the flags that decide the bfloat16 path."""
    flags = cpu_flags()
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    present = ", ".join(flag for flag in wanted if flag in flags) or "none of " + ", ".join(wanted)
    return f"{cpu_model()} ({present}); bf16 native: {cpu_has_bf16()}, oneDNN packed bf16: {packed_bf16_available()}"


# -- RTVC's decoder loop (synthesizer/models/tacotron.py), transcribed ---------------------------------------


class RtvcLSA:
    """RTVC's ``LSA`` on the plugin's weights: the cumulative attention lives on the object between steps."""

    def __init__(self, attention: torch.nn.Module) -> None:
        self.net = attention
        self.cumulative: torch.Tensor | None = None

    def init_attention(self, encoder_seq_proj: torch.Tensor) -> None:
        b, t, _ = encoder_seq_proj.size()
        self.cumulative = torch.zeros(b, t, device=encoder_seq_proj.device)
        self.attention = torch.zeros(b, t, device=encoder_seq_proj.device)

    def __call__(
        self, encoder_seq_proj: torch.Tensor, query: torch.Tensor, t: int, chars: torch.Tensor
    ) -> torch.Tensor:
        if t == 0:
            self.init_attention(encoder_seq_proj)
        assert self.cumulative is not None
        net = self.net
        processed_query = net.W(query).unsqueeze(1)
        location = self.cumulative.unsqueeze(1)
        processed_loc = net.L(net.conv(location).transpose(1, 2))
        u = net.v(torch.tanh(processed_query + encoder_seq_proj + processed_loc))
        u = u.squeeze(-1)
        u = u * (chars != 0).float()
        scores = F.softmax(u, dim=1)
        self.attention = scores
        self.cumulative = self.cumulative + self.attention
        return scores.unsqueeze(-1).transpose(1, 2)


def rtvc_generate(network: Tacotron, x: torch.Tensor, speaker_embedding: torch.Tensor, steps: int) -> torch.Tensor:
    """RTVC's ``Tacotron.generate`` (dropout on, as RTVC synthesizes) -> the post-net mel (B, n_mels, T)."""
    decoder = network.decoder
    lsa = RtvcLSA(decoder.attn_net)
    network.eval()
    batch_size, _ = x.size()
    decoder_dims, lstm_dims = decoder.attn_rnn.hidden_size, decoder.res_rnn1.hidden_size
    attn_hidden = torch.zeros(batch_size, decoder_dims)
    rnn1_hidden = torch.zeros(batch_size, lstm_dims)
    rnn2_hidden = torch.zeros(batch_size, lstm_dims)
    hidden_states = (attn_hidden, rnn1_hidden, rnn2_hidden)
    rnn1_cell = torch.zeros(batch_size, lstm_dims)
    rnn2_cell = torch.zeros(batch_size, lstm_dims)
    cell_states = (rnn1_cell, rnn2_cell)
    go_frame = torch.zeros(batch_size, network.n_mels)
    encoder_seq = network.encoder(x, speaker_embedding, 0.5)
    context_vec = torch.zeros(batch_size, encoder_seq.size(2))
    encoder_seq_proj = network.encoder_proj(encoder_seq)
    mel_outputs, attn_scores, stop_outputs = [], [], []
    r = network.r
    for t in range(0, steps, r):
        prenet_in = mel_outputs[-1][:, :, -1] if t > 0 else go_frame
        # Decoder.forward
        attn_hidden, rnn1_hidden, rnn2_hidden = hidden_states
        rnn1_cell, rnn2_cell = cell_states
        prenet_out = decoder.prenet(prenet_in, 0.5)
        attn_rnn_in = torch.cat([context_vec, prenet_out], dim=-1)
        attn_hidden = decoder.attn_rnn(attn_rnn_in.squeeze(1), attn_hidden)
        scores = lsa(encoder_seq_proj, attn_hidden, t, x)
        context_vec = scores @ encoder_seq
        context_vec = context_vec.squeeze(1)
        h = torch.cat([context_vec, attn_hidden], dim=1)
        h = decoder.rnn_input(h)
        rnn1_hidden_next, rnn1_cell = decoder.res_rnn1(h, (rnn1_hidden, rnn1_cell))
        rnn1_hidden = rnn1_hidden_next
        h = h + rnn1_hidden
        rnn2_hidden_next, rnn2_cell = decoder.res_rnn2(h, (rnn2_hidden, rnn2_cell))
        rnn2_hidden = rnn2_hidden_next
        h = h + rnn2_hidden
        mels = decoder.mel_proj(h)
        mels = mels.view(batch_size, decoder.n_mels, decoder.max_r)[:, :, :r]
        hidden_states = (attn_hidden, rnn1_hidden, rnn2_hidden)
        cell_states = (rnn1_cell, rnn2_cell)
        s = torch.cat((h, context_vec), dim=1)
        s = decoder.stop_proj(s)
        stop_tokens = torch.sigmoid(s)
        # back in generate
        mel_outputs.append(mels)
        attn_scores.append(scores)
        stop_outputs.extend([stop_tokens] * r)
        if (stop_tokens > 0.5).all() and t > 10:
            break
    mel_outputs_cat = torch.cat(mel_outputs, dim=2)
    postnet_out = network.postnet(mel_outputs_cat)
    linear = network.post_proj(postnet_out)
    linear = linear.transpose(1, 2)
    torch.cat(attn_scores, 1)
    torch.cat(stop_outputs, 1)
    network.train()
    return linear


# -- the benchmark --------------------------------------------------------------------------------------------


def rows_for(
    synthesizer: TacotronSynthesizer, batch: int, frames: int, with_synthesize: bool
) -> dict[str, Callable[[], int]]:
    """Row name -> a call that synthesizes ``batch`` items of ``frames`` frames and returns the frames made."""
    network = synthesizer.network
    ids = synthesizer.texts_to_ids([TEXT])[0]
    chars = torch.tensor([ids] * batch)
    vectors = torch.full((batch, 256), 1 / 16)
    steps = {
        "vcframe float32": DecoderStep(network.decoder, network.r, torch.float32),
        "vcframe bfloat16": DecoderStep(network.decoder, network.r, torch.bfloat16),
    }

    def rtvc() -> int:
        with torch.no_grad():
            return int(rtvc_generate(network, chars, vectors, frames).shape[0] * frames)

    def fast(step: DecoderStep) -> Callable[[], int]:
        def run() -> int:
            mel = network.generate(chars, vectors, steps=frames, p=0.5, step=step)[1]
            return int(mel.shape[0] * mel.shape[2])

        return run

    rows: dict[str, Callable[[], int]] = {"rtvc": rtvc, **{name: fast(step) for name, step in steps.items()}}
    if with_synthesize:
        embedding = SpeakerEmbedding(vectors, GE2E_RTVC_EMBEDDING)

        def synthesize() -> int:
            with torch.inference_mode():
                return int(synthesizer.synthesize([TEXT] * batch, embedding, seed=0).lengths.sum())

        rows[f"synthesize ({synthesizer.config.precision})"] = synthesize
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="Tacotron mel frames per second beside RTVC's decoder loop.")
    parser.add_argument("--threads", default="1,2", help="Comma-separated thread counts.")
    parser.add_argument("--frames", type=int, default=200, help="Frames generated per item.")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--presets", default="rtvc,small")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--synthesize", action="store_true", help="Also time the whole synthesize call.")
    args = parser.parse_args()
    print(f"torch {torch.__version__}; {cpu_description()}")
    print(f"{args.frames} frames per item, {args.rounds} interleaved rounds, RTVC behaviour (dropout 0.5, RTVC mask)")
    print("| preset | batch | threads | row | frames/s (median) | x RTVC (median of rounds) |")
    print("|---|---|---|---|---|---|")
    loads = [os.getloadavg()[0]]
    for preset in args.presets.split(","):
        config = SPEC.make_config(
            {
                "preset": preset,
                "checkpoint": None,
                "max_frames": args.frames,
                "masking": "rtvc",
                "inference_dropout": 0.5,
                "trim_threshold": None,
            }
        )
        torch.manual_seed(0)
        synthesizer = TacotronSynthesizer(config)
        with torch.no_grad():
            synthesizer.network.decoder.stop_proj.bias.fill_(-20.0)
        for batch in (int(b) for b in args.batches.split(",")):
            for threads in (int(t) for t in args.threads.split(",")):
                torch.set_num_threads(threads)
                rows = rows_for(synthesizer, batch, args.frames, args.synthesize)
                rates: dict[str, list[float]] = {name: [] for name in rows}
                for run in rows.values():
                    run()  # warm-up
                for _ in range(args.rounds):
                    for name, run in rows.items():
                        started = time.perf_counter()
                        made = run()
                        rates[name].append(made / (time.perf_counter() - started))
                    loads.append(os.getloadavg()[0])
                for name in rows:
                    ratio = statistics.median(a / b for a, b in zip(rates[name], rates["rtvc"], strict=True))
                    print(
                        f"| {preset} | {batch} | {threads} | {name} | {statistics.median(rates[name]):.0f} | "
                        f"{ratio:.2f} |"
                    )
    print(f"load average (1 min) during the run: {min(loads):.2f}-{max(loads):.2f}")


if __name__ == "__main__":
    main()
