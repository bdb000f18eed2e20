"""Tacotron synthesis speed: mel frames per second at the rtvc and small presets, batch 1 and 8.

    python benchmarks/synthesizer.py [--threads 1] [--frames 200] [--repeats 2]

Random weights, so the stop token never fires by design: the stop head's bias is set to -20 (as in the
RTVC fixtures) and every item runs exactly ``--frames`` frames. Throughput is total frames (batch x frames)
per wall-clock second of ``synthesize`` (text encoder, decoder loop, post-net), RTVC behaviour
(pre-net dropout on, multiplicative mask) and clean behaviour. Prints a table.
"""

from __future__ import annotations

import argparse
import time

import torch
from vcframe_tacotron.model import TacotronSynthesizer
from vcframe_tacotron.spec import SPEC

from vcframe.specs import GE2E_RTVC_EMBEDDING
from vcframe.types import SpeakerEmbedding

TEXT = "The quick brown fox jumps over the lazy dog, and then it runs back home again."


def main() -> None:
    parser = argparse.ArgumentParser(description="Tacotron mel frames per second.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frames", type=int, default=200, help="Frames generated per item.")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--presets", default="rtvc,small")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}, {args.frames} frames per item")
    print("| preset | masking | batch | parameters | seconds | frames/s | real-time factor |")
    print("|---|---|---|---|---|---|---|")
    for preset in args.presets.split(","):
        for masking, dropout in (("rtvc", 0.5), ("clean", 0.0)):
            config = SPEC.make_config(
                {
                    "preset": preset,
                    "checkpoint": None,
                    "max_frames": args.frames,
                    "masking": masking,
                    "inference_dropout": dropout,
                    "trim_threshold": None,
                }
            )
            torch.manual_seed(0)
            synthesizer = TacotronSynthesizer(config, device=args.device)
            with torch.no_grad():
                synthesizer.network.decoder.stop_proj.bias.fill_(-20.0)
            parameters = sum(p.numel() for p in synthesizer.network.parameters())
            for batch in (int(b) for b in args.batches.split(",")):
                embedding = SpeakerEmbedding(torch.full((batch, 256), 1 / 16), GE2E_RTVC_EMBEDDING)
                texts = [TEXT] * batch
                synthesizer.synthesize(texts[:1], embedding.select(0), seed=0)  # warm-up
                best = float("inf")
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    mel = synthesizer.synthesize(texts, embedding, seed=0)
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    best = min(best, time.perf_counter() - started)
                frames = int(mel.lengths.sum())
                rate = frames / best
                audio_seconds = frames * config.mel.hop_length / config.mel.sample_rate
                print(
                    f"| {preset} | {masking} | {batch} | {parameters / 1e6:.1f} M | {best:.2f} | {rate:.0f} | "
                    f"{audio_seconds / best:.2f}x |"
                )


if __name__ == "__main__":
    main()
