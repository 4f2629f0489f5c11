"""Shared drawing plumbing: lazy matplotlib/Pillow imports, Agg figures and atomic file writes.

matplotlib and Pillow are core dependencies; importing striate.viz never needs them, only
drawing does. Every file is written to a temporary name in the target folder and moved into place
with os.replace, so a reader never sees half a PNG or GIF.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .._files import atomic_path


def _missing(package: str) -> str:
    return f"striate.viz needs {package}: install it (pip install {package.lower()})"


def figure(**kwargs):
    """A matplotlib Figure drawn by the Agg canvas.

    Built without pyplot, so it neither switches the caller's backend nor stays registered in
    pyplot's figure list: it needs no display and is freed like any object.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(_missing("matplotlib")) from error
    return Figure(**kwargs)


def pillow():
    """The Pillow modules (Image, ImageDraw, ImageFont)."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as error:
        raise ImportError(_missing("Pillow")) from error
    return Image, ImageDraw, ImageFont


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write a matplotlib figure as a PNG atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)


def save_gif(frames: Sequence, path: str | os.PathLike, duration_ms: int = 600,
             colours: int = 48) -> Path:
    """Write RGB Pillow images as a looping animated GIF atomically, one frame per image.

    All frames share one palette, taken from up to 16 evenly spaced frames (first and last
    included: an animation that fills in step by step shows every colour in those): shared
    colours keep the file small, and the GIF writer then stores only what changes between
    frames. NOTE: Pillow folds an image identical to the one before it into that frame.
    """
    Image, _, _ = pillow()
    picks = sorted({round(n * (len(frames) - 1) / 15) for n in range(16)})
    width, height = frames[0].size
    sample = Image.new("RGB", (width, height * len(picks)))
    for row, n in enumerate(picks):
        sample.paste(frames[n], (0, row * height))
    palette = sample.quantize(colors=colours)
    indexed = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    with atomic_path(path) as tmp:
        indexed[0].save(tmp, format="GIF", save_all=True, append_images=indexed[1:],
                        duration=duration_ms, loop=0)
    return Path(path)


def font(size: int):
    """Pillow's bundled scalable font at `size` pixels (the bitmap default on old Pillow)."""
    _, _, ImageFont = pillow()
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()
