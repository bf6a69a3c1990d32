"""EasyOCR's networks as oneDNN runs them fastest on CPU, without touching the shared reader.

The CRAFT detector runs with its BatchNorms folded into its convolutions and under bfloat16
autocast where the CPU has native bf16; the recognizer's BiLSTM runs on one thread.
"""

from __future__ import annotations

import copy
from typing import Any


def cpu_has_native_bf16() -> bool:
    import torch

    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


class FastNetwork:
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

    def eval(self) -> FastNetwork:
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
