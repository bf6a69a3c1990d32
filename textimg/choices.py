"""Named choices of options whose own modules load torch, Pillow or numpy (the synth placements, the
OCR engines, the samplers, the super-resolution downsampling), kept here so the CLI and the config
list them in `--help` and check them without importing those: every command starts ~0.2 s sooner.
The modules that act on a choice import it from here; nothing here imports torch, Pillow or
numpy."""

PLACEMENTS = ("random", "center")
"""Where `synth` puts the text block: anywhere it fits (the post's corpus), or in the middle,
where a model has no position to learn (a small one then reads back ~0.1 more exact match:
docs/results.md)."""

ENGINES = ("rapidocr", "easyocr", "tesseract")
"""The OCR engines of `textimg.eval.ocr`."""

DEFAULT_ENGINE = "rapidocr"
"""The engine `score`, `eval`, `transcribe` and `--rerank` read with unless told otherwise: first
in the engine table of docs/benchmarks.md (`benchmarks/ocr.py`)."""

SAMPLERS = ("ddim", "ancestral")
"""The samplers of `textimg.sampling` (`SAMPLE_LOOPS`), the default first."""

DOWNSAMPLE_MODES = ("area", "bicubic")
"""How `textimg.super_resolution` makes a training input's low-res image
(`super_resolution.downsample`), the default first."""
