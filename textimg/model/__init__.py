"""The networks: `nn.Module`s only, no noise schedule (that is `textimg.diffusion`).

`build_model(config)` makes the U-Net a run config describes (a super-resolution one when
`config.super_resolution.low_res_size` is set); its output has twice the image channels when the
diffusion learns its variance.
"""

from textimg.config import RunConfig
from textimg.model.tokenizer import CharTokenizer
from textimg.model.unet import UNet


def build_model(config: RunConfig) -> UNet:
    """The U-Net for `config`, with output channels matching the diffusion objective."""
    channels = config.model.image_channels
    return UNet(
        config.model,
        out_channels=channels * (2 if config.diffusion.learned_variance else 1),
        super_resolution=config.super_resolution,
    )


__all__ = ["CharTokenizer", "UNet", "build_model"]
