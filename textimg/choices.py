"""Named choices of options whose own modules load torch, Pillow or numpy (the synth placements, the
OCR engines, the samplers, the super-resolution downsampling), kept here so the CLI and the config
list them in `--help` and check them without importing those: every command starts ~0.2 s sooner.
The modules that act on a choice import it from here; nothing here imports torch, Pillow or
numpy."""

PLACEMENTS = ("random", "center")
"""Where `synth` puts the text block: anywhere it fits (the post's corpus), or in the middle,
where a model has no position to learn (a small one then reads back ~0.1 more exact match:
docs/results.md)."""

BUILTIN_ENGINES = ("rapidocr", "easyocr", "tesseract")
"""The OCR engines of `textimg.eval.ocr`."""

ENGINE_ENTRY_POINTS = "textimg.ocr_engines"
"""The entry-point group where other packages register OCR engines (`eval/ocr/registered.py`)."""


def registered_engines() -> tuple[str, ...]:
    """Names of the engines installed packages register under `ENGINE_ENTRY_POINTS`, sorted; a
    name that shadows a built-in engine is ignored, so a package cannot replace textimg's."""
    from importlib.metadata import entry_points

    names = {entry.name for entry in entry_points(group=ENGINE_ENTRY_POINTS)}
    return tuple(sorted(names - set(BUILTIN_ENGINES)))


ENGINES = BUILTIN_ENGINES + registered_engines()
"""Every engine `--engine` takes: the built-in ones, then the registered ones."""

DEFAULT_ENGINE = "rapidocr"
"""The engine `score`, `eval`, `transcribe` and `--rerank` read with unless told otherwise: first
in the engine table of docs/benchmarks.md (`benchmarks/ocr.py`)."""

SAMPLERS = ("ddim", "ancestral")
"""The samplers of `textimg.sampling` (`SAMPLE_LOOPS`), the default first."""

DOWNSAMPLE_MODES = ("area", "bicubic")
"""How `textimg.super_resolution` makes a training input's low-res image
(`super_resolution.downsample`), the default first."""

DEMO_TASKS = ("letters", "digits")
"""What `textimg demo` writes (`textimg.demo.TASKS`), the default first: 3-letter lowercase
strings or 2-3 digit strings, each in under 10 minutes on 2 cores."""
