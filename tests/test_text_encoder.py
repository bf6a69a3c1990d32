"""Text encoder: T5 buckets, line numbers, masks, padding invariance, empty text."""

import torch

from textimg.model.text_encoder import TextEncoder, relative_position_bucket
from textimg.model.tokenizer import CharTokenizer


def make_encoder() -> TextEncoder:
    torch.manual_seed(0)
    return TextEncoder(
        dim=32,
        depth=2,
        head_channels=16,
        ff_mult=2,
        context_length=32,
        max_lines=4,
        relative_buckets=32,
        relative_max_distance=128,
    )


def test_t5_buckets_on_hand_worked_distances() -> None:
    # key - query; negative = key before query (lower half), positive = upper half (+16).
    distances = torch.tensor([0, -3, 3, -7, -8, -11, -12, -16, -22, -23, -90, -91, -1000, 200])
    expected = [0, 3, 19, 7, 8, 8, 9, 10, 10, 11, 14, 15, 15, 31]
    assert relative_position_bucket(distances, 32, 128).tolist() == expected


def test_line_embedding_counts_newlines() -> None:
    encoder = make_encoder()
    tokens = CharTokenizer(32).encode_batch(["a\nbc\n\nd\ne\nf"]).tokens
    lines = encoder.line_indices(tokens)[0].tolist()
    # <s> a | \n b c | \n | \n d | \n e | \n f </s>, clamped at max_lines - 1 = 3
    assert lines == [0, 0, 1, 1, 1, 2, 3, 3, 3, 3, 3, 3, 3]


def test_shapes_and_mask() -> None:
    encoder = make_encoder()
    tokens = CharTokenizer(32).encode_batch(["hello", "a"]).tokens
    text, mask = encoder(tokens, torch.tensor([10.0, 900.0]))
    assert text.shape == (2, 7, 32)
    assert mask.tolist() == [[True] * 7, [True] * 3 + [False] * 4]


def test_padding_does_not_change_real_tokens() -> None:
    encoder = make_encoder()
    tokenizer = CharTokenizer(32)
    t = torch.tensor([123.0])
    short, _ = encoder(tokenizer.encode_batch(["ab\ncd"]).tokens, t)
    padded, _ = encoder(tokenizer.encode_batch(["ab\ncd"], pad_to=20).tokens, t)
    torch.testing.assert_close(padded[:, : short.shape[1]], short, atol=1e-5, rtol=1e-5)


def test_text_and_timestep_change_the_output() -> None:
    encoder = make_encoder()
    tokenizer = CharTokenizer(32)
    t = torch.tensor([5.0])
    base, _ = encoder(tokenizer.encode_batch(["abc"]).tokens, t)
    other_text, _ = encoder(tokenizer.encode_batch(["abd"]).tokens, t)
    other_time, _ = encoder(tokenizer.encode_batch(["abc"]).tokens, torch.tensor([700.0]))
    assert not torch.allclose(base, other_text)
    assert not torch.allclose(base, other_time)


def test_empty_transcript_is_finite() -> None:
    encoder = make_encoder()
    tokens = CharTokenizer(32).encode_batch(["", "long enough text"]).tokens
    text, _ = encoder(tokens, torch.tensor([0.0, 999.0]))
    assert torch.isfinite(text).all()


def test_characters_dominate_the_encoding_at_initialisation():
    """Regression: a time embedding larger than the token embeddings (the same vector on every
    token) left "ABC" and "XYZ" ~8% apart, and a CPU run learned to ignore its text."""
    batch = CharTokenizer(32).encode_batch(["ABC", "XYZ"])
    encoder = make_encoder()
    with torch.no_grad():
        encoded, _ = encoder(batch.tokens, torch.tensor([500, 500]))
    assert float((encoded[0] - encoded[1]).norm() / encoded[0].norm()) > 0.5
