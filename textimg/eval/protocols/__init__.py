"""The scoring protocols `textimg score --protocol` knows: each benchmark's own metrics, matched
to its official code by a parity fixture (tests/fixtures/protocols/)."""

from __future__ import annotations

import importlib

from textimg.errors import check_choice
from textimg.eval.protocols.base import BenchmarkPrompt, Protocol, Target

PROTOCOL_MODULES: dict[str, str] = {
    "post": "textimg.eval.protocols.post",
    "anytext": "textimg.eval.protocols.anytext",
    "mario": "textimg.eval.protocols.mario",
    "glyphcontrol": "textimg.eval.protocols.glyphcontrol",
    "cvtg2k": "textimg.eval.protocols.cvtg2k",
    "lex": "textimg.eval.protocols.lex",
    "textatlas": "textimg.eval.protocols.textatlas",
    "strict": "textimg.eval.protocols.strict",
    "oneig": "textimg.eval.protocols.oneig",
    "longtext": "textimg.eval.protocols.longtext",
}
"""Protocol name -> the module whose `PROTOCOL` it is; imported on demand."""


def get_protocol(name: str) -> Protocol:
    """The protocol called `name`, refusing an unknown one with the list of known names."""
    check_choice("--protocol", name, PROTOCOL_MODULES)
    return importlib.import_module(PROTOCOL_MODULES[name]).PROTOCOL


def all_protocols() -> list[Protocol]:
    """Every protocol, in the order `--protocol` lists them."""
    return [get_protocol(name) for name in PROTOCOL_MODULES]


__all__ = ["BenchmarkPrompt", "Protocol", "Target", "all_protocols", "get_protocol"]
