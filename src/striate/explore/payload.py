"""Arrays and images to and from the page: base64 uint8 planes scaled per channel, data URLs,
and the checks an uploaded image passes before it is decoded."""

from __future__ import annotations

import base64
import io

import numpy as np

MAX_PIXELS = 40_000_000  # refuse bigger images before decoding them (decompression bombs)


def b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode("ascii")


def planes(a: np.ndarray, limit: int | None = None, symmetric: bool = False) -> dict:
    """A layer output for the page: (H, W, C) -> up to `limit` channel planes, each scaled to
    0..255 on its own (symmetric: 128 is 0, for signed weights), as base64 bytes (C, H, W).

    (L, C) sequences become (1, L, C); (units,) vectors one plane (1, units); 3-D volumes
    (D, H, W, C) show their middle slice."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1, 1, 1)
    elif a.ndim == 1:
        a = a.reshape(1, -1, 1)
    elif a.ndim == 2:
        a = a[None]
    elif a.ndim >= 4:
        while a.ndim > 3:
            a = a[a.shape[0] // 2]
    channels = a.shape[2]
    shown = a[:, :, :channels if limit is None else min(limit, channels)]
    shown = np.nan_to_num(shown, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = shown.min(axis=(0, 1)), shown.max(axis=(0, 1))
    if symmetric:
        bound = np.maximum(np.abs(lo), np.abs(hi))
        scaled = 127.5 + 127.5 * shown / np.where(bound > 0, bound, 1)
    else:
        span = np.where(hi > lo, hi - lo, 1)
        scaled = 255 * (shown - lo) / span
    data = np.rint(np.clip(scaled, 0, 255)).astype(np.uint8).transpose(2, 0, 1)
    return {"height": a.shape[0], "width": a.shape[1], "channels": channels,
            "shown": shown.shape[2], "min": lo.tolist(), "max": hi.tolist(),
            "symmetric": symmetric, "data": b64(data)}


def image_payload(image: np.ndarray) -> dict:
    """A float image (H, W, C) in [0, 1] -> uint8 bytes (H, W, C) for the page."""
    image = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float64)), 0, 1)
    return {"height": image.shape[0], "width": image.shape[1], "channels": image.shape[2],
            "data": b64(np.rint(255 * image))}


def decode_data_url(text: str) -> bytes:
    """'data:image/png;base64,...' (or bare base64) -> bytes."""
    if not isinstance(text, str):
        raise ValueError("image must be a data URL string")
    payload = text.split(",", 1)[1] if text.startswith("data:") else text
    try:
        return base64.b64decode(payload, validate=False)
    except (ValueError, TypeError):
        raise ValueError("image is not valid base64 data") from None


def pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ValueError("reading images needs Pillow: pip install 'striate[viz]'") from None
    return Image


def check_image_bytes(data: bytes) -> None:
    """Decode only the header: a sentence for what is not an image or is far too large."""
    Image = pillow()
    try:
        with Image.open(io.BytesIO(data)) as image:
            w, h = image.size
    except Exception:
        raise ValueError("the upload is not an image Pillow can read (PNG, JPEG, GIF, BMP, "
                         "WebP, ...)") from None
    if w * h > MAX_PIXELS or w < 1 or h < 1:
        raise ValueError(f"the image is {w}x{h} pixels; at most {MAX_PIXELS:,} pixels are read")
