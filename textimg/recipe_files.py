"""Where recipes come from: the TOML files shipped in `textimg/recipes/`, or a user's file, each
merged over the recipe it `extends`; no settings are checked here (`textimg.config` does that).
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import tomllib

from textimg.errors import TextimgError


def spelled_value(value: Any) -> str:
    """A setting's value as a recipe or `--set` writes it: true, 3, [1, 2], cosine."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return f"[{', '.join(spelled_value(item) for item in value)}]"
    return str(value)


def recipe_names() -> list[str]:
    """Names of the recipes shipped inside the package."""
    folder = resources.files("textimg") / "recipes"
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


def read_recipe(
    reference: str, child: Path | Traversable | None, seen: tuple[str, ...]
) -> dict[str, Any]:
    """The recipe `reference` names, merged over the one it extends; `child` is the recipe whose
    `extends` names it (None for the command line's)."""
    source = _locate_recipe(reference, child)
    if str(source) in seen:
        raise TextimgError(f"recipe loop: {' -> '.join((*seen, str(source)))}")
    try:
        data = tomllib.loads(source.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        raise TextimgError(
            f"recipe {source} is not UTF-8 text (byte {error.object[error.start]:#x} at offset "
            f"{error.start}); save it as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise TextimgError(f"recipe {source}: {error}") from None
    parent = data.pop("extends", None)
    for section, values in data.items():
        if not isinstance(values, dict):
            raise TextimgError(
                f"recipe {source}: {section} = {spelled_value(values)} is not a section; write its "
                f"settings under [{section}] as name = value"
            )
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise TextimgError(
            f"recipe {source}: extends = {spelled_value(parent)} must be a recipe name or a TOML "
            'file in quotes, e.g. extends = "tiny" or extends = "parent.toml"'
        )
    merged = read_recipe(parent, source, seen=(*seen, str(source)))
    for section, values in data.items():
        merged.setdefault(section, {}).update(values)
    return merged


def _locate_recipe(reference: str, child: Path | Traversable | None) -> Path | Traversable:
    """A recipe file: `reference` as a path from the folder of `child` (the recipe extending it,
    so a recipe and its parent move together) or from the current folder, where that is a file;
    else the shipped recipe of that name, so a folder named like one (`demo/` after
    `textimg demo --out demo`) never hides it."""
    path = (child.parent if isinstance(child, Path) else Path()) / reference
    if path.is_file():
        return path
    shipped = resources.files("textimg") / "recipes" / f"{reference}.toml"
    if reference and "/" not in reference and shipped.is_file():
        return shipped
    named_in = f" (the extends of {child})" if child else ""
    if path.suffix == ".toml" or path.exists() or "/" in reference:
        what = "is a folder, not a TOML file" if path.is_dir() else "does not exist"
        raise TextimgError(f"recipe file {path}{named_in} {what}")
    raise TextimgError(
        f"unknown recipe {reference!r}{named_in}; choose one of {', '.join(recipe_names())} "
        "or give a path to a .toml file"
    )
