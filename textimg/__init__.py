"""textimg: train and judge diffusion models that write arbitrary text into images."""

__version__ = "0.1.0"
