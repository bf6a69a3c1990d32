"""Character-level tokenizer over printable ASCII plus newline.

The post switched from BPE to characters because spelling is the whole task: the model must see
every letter. Special tokens come first and never collide: `pad` is its own id, so masking padding
never masks the start token (the original reused pad = start and masked its own `<s>`).
The classifier-free-guidance "null transcript" is one `null` token between start and end, which
differs from an empty transcript (start, end): "no text in the image" is a real condition.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PAD, START, END, UNKNOWN, NULL = range(5)
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<null>")
CHARACTERS = "\n" + "".join(chr(code) for code in range(32, 127))
VOCAB_SIZE = len(SPECIAL_TOKENS) + len(CHARACTERS)
NEWLINE = len(SPECIAL_TOKENS)  # id of "\n", used by the line embedding
_CHAR_TO_ID = {char: index + len(SPECIAL_TOKENS) for index, char in enumerate(CHARACTERS)}


@dataclass(frozen=True)
class TokenBatch:
    """Padded token ids (B, L), the indices of texts that were cut to fit the context and of
    texts holding characters outside the vocabulary (each read as `<unk>`)."""

    tokens: torch.Tensor
    truncated: tuple[int, ...]
    unknown: tuple[int, ...] = ()


def unknown_characters(text: str) -> str:
    """The distinct characters of `text` that the vocabulary lacks (emoji, CJK, accents), in
    order of first appearance: the model reads each as `<unk>` and cannot draw it."""
    return "".join(dict.fromkeys(char for char in text if char not in _CHAR_TO_ID))


class CharTokenizer:
    """Maps text to `<s> chars </s>`, truncating to `context_length` tokens (and saying so)."""

    def __init__(self, context_length: int) -> None:
        if context_length < 3:
            raise ValueError("context_length must leave room for start, one token and end")
        self.context_length = context_length

    @property
    def max_characters(self) -> int:
        """Characters that fit between the start and end tokens."""
        return self.context_length - 2

    def encode(self, text: str) -> tuple[list[int], bool]:
        """Token ids of one text and whether it was truncated."""
        ids = [_CHAR_TO_ID.get(char, UNKNOWN) for char in text]
        truncated = len(ids) > self.max_characters
        return [START, *ids[: self.max_characters], END], truncated

    def decode(self, ids: list[int]) -> str:
        """Inverse of `encode` for real characters; special tokens are dropped."""
        offset = len(SPECIAL_TOKENS)
        return "".join(CHARACTERS[i - offset] for i in ids if i >= offset)

    def encode_batch(self, texts: list[str], pad_to: int | None = None) -> TokenBatch:
        """Pad to the longest text in the batch (or `pad_to`, for a fixed shape under compile)."""
        encoded = [self.encode(text) for text in texts]
        length = max(len(ids) for ids, _ in encoded)
        if pad_to is not None:
            length = max(length, pad_to)
        tokens = torch.full((len(texts), length), PAD, dtype=torch.long)
        for row, (ids, _) in enumerate(encoded):
            tokens[row, : len(ids)] = torch.tensor(ids)
        truncated = tuple(i for i, (_, cut) in enumerate(encoded) if cut)
        unknown = tuple(i for i, text in enumerate(texts) if unknown_characters(text))
        return TokenBatch(tokens=tokens, truncated=truncated, unknown=unknown)

    def null_tokens(self, batch_size: int, length: int) -> torch.Tensor:
        """The unconditional transcript for classifier-free guidance, padded to `length`."""
        tokens = torch.full((batch_size, length), PAD, dtype=torch.long)
        tokens[:, :3] = torch.tensor([START, NULL, END])
        return tokens
