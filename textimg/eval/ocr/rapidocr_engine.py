"""RapidOCR, the default reader: PP-OCRv6's small detector and recognizer on onnxruntime.

The ONNX models ship inside the `rapidocr` wheel; on textimg's benchmark it reads clean and
degraded renderings far better than EasyOCR, in less time (docs/eval.md, `benchmarks/ocr.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from textimg.errors import TextimgError
from textimg.eval.ocr.base import Detection, OcrEngine, OcrSettings
from textimg.eval.ocr.cache import OcrCache

RAPIDOCR_MODELS = ("PP-OCRv6_det_small.onnx", "PP-OCRv6_rec_small.onnx")
"""The detector and recognizer RapidOCR reads with: the PP-OCRv6 small models its wheel ships."""


@cache
def load_rapidocr(detection_side: int) -> Any:
    """RapidOCR on the wheel's own PP-OCRv6 models, loaded once per process and detection side.

    The model files are named explicitly: given a path, RapidOCR never calls its downloader, so a
    missing file is a clear error instead of a network call. No angle classifier (generated text is
    upright) and no score threshold of its own: `min_confidence` filters, as for every engine.
    onnxruntime runs on one thread: on images this small its ops are too short to share, and two
    threads read 2-3x fewer images/s on two busy cores, with equal transcripts (docs/benchmarks.md).
    """
    try:
        import rapidocr
    except ImportError:
        raise TextimgError("RapidOCR missing: pip install rapidocr onnxruntime") from None
    models = Path(rapidocr.__file__).parent / "models"
    detector, recognizer = (models / name for name in RAPIDOCR_MODELS)
    for path in (detector, recognizer):
        if not path.is_file():
            raise TextimgError(f"RapidOCR model {path} missing: install rapidocr>=3.9")
    return rapidocr.RapidOCR(
        params={
            "Global.use_cls": False,
            "Global.text_score": 0.0,
            "Global.log_level": "critical",
            "Det.model_path": str(detector),
            "Det.limit_side_len": detection_side,
            "Rec.model_path": str(recognizer),
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
    )


class RapidOcrEngine(OcrEngine):
    """RapidOCR (PP-OCRv6 small, onnxruntime on CPU), one image at a time.

    Its detector finds whole text lines; their boxes go through the same line grouping and filters
    as every engine's. Images are read one by one because the recognizer pads each batch of crops
    to the widest: batching across images would make a transcript depend on its neighbours.
    """

    name = "rapidocr"
    detection_side = 320
    """The detector enlarges an image until its shorter side reaches this (RapidOCR's
    `limit_side_len` with `limit_type="min"`, default 736); `benchmarks/ocr.py --sweep` compares."""

    def __init__(self, settings: OcrSettings, cache: OcrCache | None = None) -> None:
        super().__init__(settings, cache)
        self.reader = load_rapidocr(self.detection_side)

    @property
    def version(self) -> str:
        from importlib.metadata import version

        models = " ".join(name.removesuffix(".onnx") for name in RAPIDOCR_MODELS)
        return (
            f"rapidocr {version('rapidocr')} onnxruntime {version('onnxruntime')} {models} "
            f"det_side {self.detection_side} no_cls"
        )

    def _read(self, images: Sequence[Image.Image]) -> list[str]:
        return [self._read_one(image) for image in images]

    def _read_one(self, image: Image.Image) -> str:
        array, factor = self._prepare(image)
        # RapidOCR takes arrays in OpenCV's BGR order, as its PaddleOCR models were trained.
        result = self.reader(np.ascontiguousarray(array[:, :, ::-1]))
        if getattr(result, "boxes", None) is None or getattr(result, "txts", None) is None:
            return ""
        detections = []
        for box, text, confidence in zip(result.boxes, result.txts, result.scores, strict=True):
            xs, ys = box[:, 0] / factor, box[:, 1] / factor
            extent = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
            detections.append(Detection(str(text), float(confidence), extent))
        return self._transcript(detections, image.size)
