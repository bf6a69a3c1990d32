"""Named choices of options whose own modules load Pillow and numpy (the synth placements, the OCR
engines), kept here so the CLI lists them in `--help` and checks them without importing those:
every command starts ~0.2 s sooner. The modules that act on a choice import it from here."""

PLACEMENTS = ("random", "center")
"""Where `synth` puts the text block: anywhere it fits (the post's corpus), or in the middle,
where a model has no position to learn (a small one then reads back ~0.1 more exact match:
docs/results.md)."""

ENGINES = ("rapidocr", "easyocr", "tesseract")
"""The OCR engines of `textimg.eval.ocr`."""

DEFAULT_ENGINE = "rapidocr"
"""The engine `score`, `eval`, `transcribe` and `--rerank` read with unless told otherwise: first
in the engine table of docs/benchmarks.md (`benchmarks/ocr.py`)."""
