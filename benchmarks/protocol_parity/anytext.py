"""Parity fixture for `anytext`: AnyText's own `eval_dgocr.py` main loop on the shared cases.

    /tmp/parity-venv/bin/python benchmarks/protocol_parity/anytext.py GITDIR

GITDIR: a fetched tyxsspa/AnyText (needs numpy, Levenshtein, easydict, ujson, tqdm in the venv).
The cases become a laion test1k.json read by the official `load_data`/`get_item`; `main()` then
runs as published with the recognizer, image reading and cropping stubbed: the crop of line k
"reads" as transcript line k (stripped), textimg's mapping. Its per-line `sen_acc` and
`edit_dist` lists are taken from `main`'s frame when it returns.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from cases import cases
from official import export, head_commit, set_attr, stub_modules, write_fixture

SCRIPT = "eval/eval_dgocr.py"
FILES = [SCRIPT, "eval/anytext_singleGPU.py", "cldm/recognizer.py", "dataset_util.py"]
FILES += ["ocr_weights/en_dict.txt"]
SQUARE = [[0, 0], [10, 0], [10, 10], [0, 10]]


class _Chain:
    """Stands in for image tensors: every method returns itself."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self


class _Module:
    """torch.nn.Module for the recognizer's isinstance check."""


def ground_truth_lines(case: dict) -> list[str]:
    target = case["target"]
    return target["regions"] or (target["text"].split("\n") if target["text"] else [])


def test_json(rows: list[dict], into: Path) -> Path:
    annotations = [
        [
            {"polygon": SQUARE, "text": line, "pos": 0, "valid": True}
            for line in ground_truth_lines(c)
        ]
        for c in rows
    ]
    data = [
        {"img_name": f"{case['key']}.jpg", "caption": "a sign", "annotations": notes}
        for case, notes in zip(rows, annotations, strict=True)
    ]
    path = into / "laion_word" / "test1k.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"data_list": data}, ensure_ascii=False), encoding="utf-8")
    return path


def stub_heavy_imports() -> None:
    stub_modules(
        "cv2",
        "einops",
        "torch",
        "torch.nn",
        "torch.nn.functional",
        "pytorch_lightning",
        "cldm.model",
        "cldm.ddim_hacked",
        "t3_dataset",
        "PIL",
        "PIL.ImageFont",
        "modelscope",
        "modelscope.pipelines",
        "modelscope.utils",
        "modelscope.utils.constant",
        "ocr_recog",
        "ocr_recog.RecModel",
        "skimage",
        "skimage.transform",
        "skimage.transform._geometric",
    )
    for dotted, value in {
        "cv2.fillPoly": lambda *args, **kwargs: None,
        "cv2.imread": lambda path: _Chain(),
        "torch.from_numpy": lambda array: _Chain(),
        "torch.nn.Module": _Module,
        "torch.nn.functional": sys.modules["torch.nn.functional"],
        "torch.nn": sys.modules["torch.nn"],
        "pytorch_lightning.seed_everything": None,
        "cldm.model.create_model": None,
        "cldm.model.load_state_dict": None,
        "cldm.ddim_hacked.DDIMSampler": None,
        "t3_dataset.draw_glyph": lambda font, text: None,
        "t3_dataset.draw_glyph2": lambda *args, **kwargs: None,
        "t3_dataset.get_caption_pos": lambda caption, *args: caption,
        "PIL.ImageFont.truetype": lambda *args, **kwargs: None,
        "PIL.ImageFont": sys.modules["PIL.ImageFont"],
        "modelscope.pipelines.pipeline": None,
        "modelscope.utils.constant.Tasks": _Chain(),
        "ocr_recog.RecModel.RecModel": None,
        "skimage.transform._geometric._umeyama": None,
    }.items():
        set_attr(dotted, value)


def run_official(root: Path, json_path: Path, readings: list[str]) -> tuple[list, list]:
    """eval_dgocr.main() over the JSON; each line crop reads as the next of `readings`."""
    sys.argv = ["eval_dgocr.py", "--img_dir", str(root), "--input_json", str(json_path)]
    import eval_dgocr

    queue = iter(readings)
    eval_dgocr.num_samples = 1
    eval_dgocr.crop_image = lambda image, position: next(queue)
    eval_dgocr.pre_process = lambda crops, shape: crops
    eval_dgocr.pipeline = lambda *args, **kwargs: lambda crop: {"text": [crop]}
    captured: dict = {}

    def on_return(frame, event, arg):
        if event == "return" and frame.f_code is eval_dgocr.main.__code__:
            captured.update(frame.f_locals)

    sys.setprofile(on_return)
    try:
        eval_dgocr.main()
    finally:
        sys.setprofile(None)
    return captured["sen_acc"], captured["edit_dist"]


def main(gitdir: str) -> None:
    commit = head_commit(gitdir)
    rows = cases()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        export(gitdir, commit, FILES, root)
        (root / "cldm" / "__init__.py").write_text("")
        os.chdir(root)  # eval_dgocr.py reads ./ocr_weights/en_dict.txt
        sys.path[:0] = [str(root), str(root / "eval")]
        stub_heavy_imports()
        json_path = test_json(rows, root)
        from anytext_singleGPU import get_item, load_data

        data = load_data(str(json_path))
        scored = [get_item(data, index) for index in range(len(data))]
        readings = []
        for case, item in zip(rows, scored, strict=True):
            lines = [line.strip() for line in case["transcript"].split("\n")]
            lines += [""] * item["n_lines"]
            readings += lines[: item["n_lines"]]
        sen_acc, edit_dist = run_official(root, json_path, readings)
    fixture_rows, start = [], 0
    for case, item in zip(rows, scored, strict=True):
        count = item["n_lines"]
        official = {"lines": float(count)}
        if count:
            official["sen_acc"] = sum(sen_acc[start : start + count]) / count
            official["ned"] = sum(edit_dist[start : start + count]) / count
        fixture_rows.append({**case, "official": official})
        start += count
    assert start == len(sen_acc) == len(edit_dist)
    aggregate = {"sen_acc": sum(sen_acc) / len(sen_acc), "ned": sum(edit_dist) / len(edit_dist)}
    print(write_fixture("anytext", f"tyxsspa/AnyText@{commit} {SCRIPT}", fixture_rows, aggregate))


if __name__ == "__main__":
    main(sys.argv[1])
