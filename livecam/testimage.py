"""A photo-like test frame for benchmarks and quality tests (needs numpy).

JPEG speed and resampling quality depend on content: a flat test pattern encodes
several times faster than a photo. This builds a deterministic frame with a photo's
mix of smooth gradients, hard edges and fine texture at every scale.
"""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFilter


def photo_like(width: int, height: int, seed: int = 1) -> Image.Image:
    """A deterministic RGB frame that compresses like a daylight photo."""
    import numpy as np

    rng = np.random.default_rng(seed)
    yy = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    base = np.empty((height, width, 3), dtype=np.float32)
    base[:] = (1 - yy) * np.array([70, 120, 200], np.float32) + yy * np.array(
        [90, 130, 60], np.float32
    )
    # Texture at every scale (a 1/f-like spectrum, as in natural images).
    for scale, amplitude in ((128, 50.0), (32, 30.0), (8, 18.0), (2, 10.0), (1, 5.0)):
        small = rng.normal(0.0, 1.0, (height // scale + 2, width // scale + 2, 3))
        small = np.clip(small * 40 + 128, 0, 255).astype(np.uint8)
        up = Image.fromarray(small, "RGB").resize(
            ((width // scale + 2) * scale, (height // scale + 2) * scale),
            Image.Resampling.BICUBIC,
        )
        layer = np.asarray(up, dtype=np.float32)[:height, :width] - 128
        base += layer * (amplitude / 40)
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    # Hard edges: buildings, poles and a few round things.
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(height // 3, height))
        w, h = (
            int(rng.integers(width // 60, width // 8)),
            int(rng.integers(height // 40, height // 4)),
        )
        colour = tuple(int(c) for c in rng.integers(20, 235, 3))
        if rng.random() < 0.7:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        else:
            draw.ellipse((x0, y0, x0 + w, y0 + w), fill=colour)
    for _ in range(25):
        x = int(rng.integers(0, width))
        draw.line((x, 0, x + int(rng.integers(-50, 50)), height), fill=(30, 30, 30), width=2)
    # Slight optical softness, as a real lens gives.
    return image.filter(ImageFilter.GaussianBlur(0.6))
