"""Tokenizer: ids, specials that never collide, truncation that is reported."""

import torch

from textimg.model.tokenizer import END, NULL, PAD, START, UNKNOWN, VOCAB_SIZE, CharTokenizer


def test_round_trip_and_specials() -> None:
    tokenizer = CharTokenizer(context_length=32)
    ids, truncated = tokenizer.encode("Hi there\nline 2!")
    assert ids[0] == START and ids[-1] == END and not truncated
    assert tokenizer.decode(ids) == "Hi there\nline 2!"
    assert all(0 <= i < VOCAB_SIZE for i in ids)
    assert PAD not in ids and len({PAD, START, END, UNKNOWN, NULL}) == 5


def test_unknown_characters_map_to_unknown() -> None:
    ids, _ = CharTokenizer(16).encode("é\t")
    assert ids[1:-1] == [UNKNOWN, UNKNOWN]


def test_truncation_is_reported() -> None:
    tokenizer = CharTokenizer(context_length=8)
    batch = tokenizer.encode_batch(["short", "much too long for eight"])
    assert batch.truncated == (1,)
    assert batch.tokens.shape == (2, 8)
    assert batch.tokens[1, -1] == END


def test_batch_padding_and_empty_text() -> None:
    tokenizer = CharTokenizer(16)
    batch = tokenizer.encode_batch(["", "abc"], pad_to=10)
    assert batch.tokens.shape == (2, 10)
    assert batch.tokens[0, :3].tolist() == [START, END, PAD]
    assert (batch.tokens[0, 2:] == PAD).all()


def test_null_transcript_differs_from_empty() -> None:
    tokenizer = CharTokenizer(16)
    null = tokenizer.null_tokens(2, 5)
    empty = tokenizer.encode_batch(["", ""], pad_to=5).tokens
    assert null[0].tolist() == [START, NULL, END, PAD, PAD]
    assert not torch.equal(null, empty)
