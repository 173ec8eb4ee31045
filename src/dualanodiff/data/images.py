"""Reading images and masks from a data set, with every failure turned into one clear `DataError` line.

Pillow's own safety nets stay on: a truncated file fails (`ImageFile.LOAD_TRUNCATED_IMAGES` is never set),
and an image past `PIL.Image.MAX_IMAGE_PIXELS` is refused as a possible decompression bomb (Pillow's warning
as well as its error).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dualanodiff.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MASK_THRESHOLD = 128  # anomalous from 50% grey up: soft-edged masks binarise at their middle


def is_supported_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def unsupported_type_problem(path: Path) -> str:
    suffix = path.suffix or "(no suffix)"
    return f"{path}: unsupported file type {suffix!r} (supported: {', '.join(IMAGE_SUFFIXES)})"


def _open_decoded(path: str | Path) -> Image.Image:
    """Open and fully decode an image, so that corrupt and truncated files fail here and not later."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DataError(f"{path}: refused as a possible decompression bomb ({error})") from None
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image (unknown format or corrupt header)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{path}: corrupt or truncated image ({error})") from None


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit grayscale keeps its full range (Pillow's own conversion would clip it to white)."""
    if image.mode == "I" or image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.int64)
        return Image.fromarray((np.clip(values, 0, 65535) >> 8).astype(np.uint8), mode="L")
    return image


def load_rgb(path: str | Path) -> Image.Image:
    """The image at `path` as an 8-bit RGB PIL image (grayscale, RGBA, palette and 16-bit images converted).

    Raises `DataError` (one line naming the file) for a missing, corrupt, truncated or oversized file.
    """
    return _to_8bit(_open_decoded(path)).convert("RGB")


def binarise(mask: Image.Image | np.ndarray) -> np.ndarray:
    """A bool HxW mask: True from 50 % grey up (`MASK_THRESHOLD`), the one rule for every mask read or resized."""
    if isinstance(mask, Image.Image):
        mask = mask.convert("L")
    return np.asarray(mask) >= MASK_THRESHOLD


def read_mask(path: str | Path) -> np.ndarray:
    """Any mask file (an anomaly, object or generated mask) as a bool HxW array; it may be empty."""
    return binarise(_to_8bit(_open_decoded(path)))


def load_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A data set's anomaly mask at `path` as a bool HxW array, binarised by `binarise` (soft masks at 50 %).

    `size` is the (width, height) of the mask's image, PIL's `Image.size`; a mask of another size is a
    `DataError`, and so is a mask that is empty after binarising (an anomaly sample whose anomaly is nowhere).
    """
    path = Path(path)
    mask_image = _to_8bit(_open_decoded(path))
    if size is not None and mask_image.size != tuple(size):
        raise DataError(f"{path}: mask is {mask_image.width}x{mask_image.height} pixels but its image is "
                        f"{size[0]}x{size[1]}")
    mask = binarise(mask_image)
    if not mask.any():
        raise DataError(f"{path}: mask is empty (no pixel >= {MASK_THRESHOLD} of 255)")
    return mask
