"""Pictures a person looks at: mask overlays, contact sheets of triplets, loss curves, confusion matrices.

Every picture is written atomically (a temporary file renamed into place). Matplotlib is used through its
object-oriented API with the Agg canvas, so importing this module never changes matplotlib's global backend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from dualanodiff.io import atomic_write, save_image

_BACKGROUND = (255, 255, 255)
_TEXT = (20, 20, 20)
_PAD = 4  # pixels between cells
_GROUP_GAP = 20  # pixels between groups of columns laid side by side


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 HxWx3 view of an HxW, HxWx1, HxWx3 or HxWx4 array."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image[:, :, :3]
    raise ValueError(f"expected an HxW or HxWxC image, got shape {image.shape}")


def mask_overlay(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (255, 0, 0),
                 alpha: float = 0.45) -> np.ndarray:
    """The image with the mask tinted in `color` and ringed by a 1-pixel contour (so tiny masks show)."""
    rgb = _as_rgb(image)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {rgb.shape[:2]}")
    tint = np.asarray(color, dtype=np.float32)
    out = rgb.astype(np.float32)
    out[mask] = (1.0 - alpha) * out[mask] + alpha * tint
    # The contour lies just outside the mask: it adds to the visible size of a tiny mask and hides none of it.
    contour = ndimage.binary_dilation(mask, structure=np.ones((3, 3), bool)) & ~mask
    out[contour] = tint
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _fit_size(height: int, width: int, cell: int) -> tuple[int, int]:
    """(width, height) that fits in a cell x cell box with the aspect ratio kept."""
    scale = cell / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resize_image(image: np.ndarray, cell: int) -> np.ndarray:
    """Fit into the cell: NEAREST when enlarging keeps small samples' pixels sharp, LANCZOS when shrinking."""
    rgb = _as_rgb(image)
    size = _fit_size(*rgb.shape[:2], cell)
    enlarging = size[0] >= rgb.shape[1]
    resample = Image.Resampling.NEAREST if enlarging else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(rgb).resize(size, resample))


def _resize_mask(mask: np.ndarray, cell: int) -> np.ndarray:
    """Fit into the cell; when shrinking, a cell pixel is in the mask if any source pixel under it is."""
    mask = np.asarray(mask, dtype=bool)
    size = _fit_size(*mask.shape, cell)
    coverage = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BOX)
    return np.asarray(coverage) > 0


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _fitting_font(texts: Sequence[str], width: int, largest: int = 14, smallest: int = 8):
    """The largest default-font size at which every text fits in `width` pixels."""
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for size in range(largest, smallest, -1):
        font = _font(size)
        if all(probe.textlength(text, font=font) <= width for text in texts):
            return font
    return _font(smallest)


def _text_height(font) -> int:
    _, top, _, bottom = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), "Ag", font=font)
    return bottom - top


def _grid(rows: Sequence[Sequence[np.ndarray | None]], headers: Sequence[str], *, title: str | None,
          cell: int, groups: int) -> Image.Image:
    """Rows of cell-sized pictures under column headers; `groups` splits the rows into side-by-side blocks."""
    if not rows:
        raise ValueError("nothing to draw: no rows")
    columns = len(headers)
    groups = max(1, min(groups, len(rows)))
    rows_per_group = math.ceil(len(rows) / groups)
    groups = math.ceil(len(rows) / rows_per_group)  # e.g. 5 rows in 4 groups needs only 3 blocks of 2

    header_font = _fitting_font(headers, cell)
    header_height = _text_height(header_font) + 2 * _PAD
    title_font = _font(16)
    title_height = _text_height(title_font) + 3 * _PAD if title else 0

    group_width = columns * cell + (columns - 1) * _PAD
    width = groups * group_width + (groups - 1) * _GROUP_GAP + 2 * _PAD
    height = title_height + header_height + rows_per_group * (cell + _PAD) + _PAD
    if title:
        title_width = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(title, font=title_font)
        width = max(width, int(title_width) + 4 * _PAD)
    sheet = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((2 * _PAD, _PAD), title, fill=_TEXT, font=title_font)

    for group in range(groups):
        left = _PAD + group * (group_width + _GROUP_GAP)
        for column, header in enumerate(headers):
            x = left + column * (cell + _PAD)
            text_width = draw.textlength(header, font=header_font)
            draw.text((x + (cell - text_width) / 2, title_height + _PAD), header, fill=_TEXT,
                      font=header_font)
        for position, row in enumerate(rows[group * rows_per_group:(group + 1) * rows_per_group]):
            y = title_height + header_height + position * (cell + _PAD)
            for column, picture in enumerate(row):
                if picture is None:
                    continue
                x = left + column * (cell + _PAD)
                # Centre pictures that are not square inside their cell.
                offset_x = (cell - picture.shape[1]) // 2
                offset_y = (cell - picture.shape[0]) // 2
                sheet.paste(Image.fromarray(picture), (x + offset_x, y + offset_y))
    return sheet


def contact_sheet(rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], path: str | Path, *,
                  columns: Sequence[str] = ("image", "anomaly part", "mask overlay"),
                  title: str | None = None, cell: int = 128, groups: int = 1) -> Path:
    """Draw rows of (image, anomaly part, mask) as image | anomaly part | mask overlaid on the image.

    Each picture is fitted into a `cell`-pixel square (enlarged with NEAREST so 64-px samples stay readable);
    `groups` lays the rows out in that many side-by-side blocks, e.g. 16 rows as 2 blocks of 8.
    """
    if len(columns) != 3:
        raise ValueError(f"a contact sheet has 3 columns, got headers {list(columns)}")
    cells = []
    for image, part, mask in rows:
        if np.shape(mask) != np.shape(image)[:2]:
            raise ValueError(f"mask shape {np.shape(mask)} does not match image shape {np.shape(image)[:2]}")
        shown = _resize_image(image, cell)
        # Overlay at display size so the contour is one screen pixel wide whatever the sample size.
        cells.append([shown, _resize_image(part, cell), mask_overlay(shown, _resize_mask(mask, cell))])
    return save_image(path, _grid(cells, columns, title=title, cell=cell, groups=groups))


def side_by_side(sheets: dict[str, list[np.ndarray]], path: str | Path, *, cell: int = 128,
                 title: str | None = None) -> Path:
    """Labelled columns of images, row i of each side by side (e.g. the same seeds without / with BCM)."""
    if not sheets or not any(sheets.values()):
        raise ValueError("nothing to draw: no images")
    columns = list(sheets.values())
    length = max(len(images) for images in columns)
    rows = [[_resize_image(images[i], cell) if i < len(images) else None for images in columns]
            for i in range(length)]
    return save_image(path, _grid(rows, list(sheets), title=title, cell=cell, groups=1))


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    return np.convolve(values, np.ones(window) / window, mode="valid")


def _save_figure(figure, path: str | Path) -> Path:
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))


def plot_loss_curve(steps: Sequence[float], losses: Sequence[float], path: str | Path, *,
                    title: str | None = None, window: int | None = None) -> Path:
    """The raw loss (faint) and its moving average over `window` steps (default: a twentieth of the run).

    The y axis is logarithmic when the positive losses span more than a factor of 30.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps_array = np.asarray(steps, dtype=np.float64)
    loss_array = np.asarray(losses, dtype=np.float64)
    if steps_array.shape != loss_array.shape or steps_array.ndim != 1:
        raise ValueError(f"steps and losses must be 1-D and equally long, got {steps_array.shape} "
                         f"and {loss_array.shape}")
    finite = np.isfinite(loss_array)
    if not finite.any():
        raise ValueError("no finite loss values to plot")
    steps_array, loss_array = steps_array[finite], loss_array[finite]
    if window is None:
        window = max(1, len(loss_array) // 20)
    window = max(1, min(window, len(loss_array)))

    figure = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(steps_array, loss_array, color="tab:blue", alpha=0.3, linewidth=0.8, label="loss")
    if window > 1:
        smoothed = _moving_average(loss_array, window)
        # Each average is drawn at the last step it covers, so the curve never runs ahead of the data.
        axes.plot(steps_array[window - 1:], smoothed, color="tab:blue", linewidth=1.8,
                  label=f"moving average ({window} steps)")
    positive = loss_array[loss_array > 0]
    if len(positive) == len(loss_array) and positive.max() / positive.min() > 30:
        axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper right", fontsize="small")
    if title:
        axes.set_title(title)
    return _save_figure(figure, path)


def plot_confusion_matrix(matrix: Sequence[Sequence[float]] | np.ndarray, classes: Sequence[str],
                          path: str | Path, *, title: str | None = None) -> Path:
    """Counts per cell (rows: true class, columns: predicted), shaded by the fraction of the true class."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=np.float64)
    classes = [str(name) for name in classes]
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(classes):
        raise ValueError(f"confusion matrix of shape {counts.shape} does not fit {len(classes)} classes")
    row_totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)

    size = 2.5 + 0.55 * len(classes)
    figure = Figure(figsize=(size + 1, size))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    shading = axes.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(shading, ax=axes, fraction=0.046, pad=0.04, label="fraction of true class")
    integral = np.allclose(counts, np.round(counts))
    for (row, column), count in np.ndenumerate(counts):
        text = f"{round(count)}" if integral else f"{count:.2f}"
        axes.text(column, row, text, ha="center", va="center", fontsize="small",
                  color="white" if fractions[row, column] > 0.5 else "black")
    positions = np.arange(len(classes))
    axes.set_xticks(positions, classes, rotation=45, ha="right")
    axes.set_yticks(positions, classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if title:
        axes.set_title(title)
    return _save_figure(figure, path)
