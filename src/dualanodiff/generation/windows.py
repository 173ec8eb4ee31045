"""The window canvas: the dual model draws a window of a real normal image, and the anomaly it drew is put
into that image, so every pixel away from the anomaly is the normal image's own.

Sample i of seed s takes, from a generator of (s, i) alone:
- a normal training image of the run's object;
- a window side, from the sides of the run's training windows (`Run.windows()`), jittered;
- a place: of a few on the object (the run's object masks; textures: anywhere; with a position width, drawn near
  where that training anomaly lies on its own object, `data.windows.object_position`), the one that looks most
  like the surroundings of that training anomaly (`data.windows.context_descriptor`).
Its record holds the normal image's name, the window and the training anomaly it matched, which is all
`DualAnoDiffPipeline` needs to make the same sample again. With a strength below 1 (`GenerateSettings.strength`)
the denoising starts from that training anomaly's own window (image and anomaly part) at that noise level rather
than from pure noise, cut at the sample's side around the anomaly with a random offset and flips (its record's
`start`), and the place is the one where the object lies in the window as in the start's (with turns, at the best
of the start's turns, recorded in the start). With orientations "any" the start also takes one of the eight quarter
turns and mirrorings at random before it is placed, as croppaste turns its pastes. `GenerateSettings` holds these
choices, `CanvasChoices` resolves them.

The mask comes from the drawn anomaly part, scaled to the window and cut to the object; a drawn component that
touches the window's edge is dropped (training windows hold their anomaly whole). What goes into the normal image
depends on `GenerateSettings.colours`:
- "training" (the window canvas's default without a start): the mask's pixels are painted with the colours of the
  training anomaly the sample matched, in the order of the drawn brightness, so the model gives the shape and the
  data the colours; every pixel outside the mask is the normal image's.
- "start" (the window canvas's default, with a start): the mask's pixels are the start's own, the real training
  anomaly's window as the start cut it, each from the nearest pixel of its anomaly, so the model gives the shape and
  the data the texture too.
- "drawn": the drawn image replaces the normal one inside the mask; around it a fade adds what the model changed to
  the normal image, which keeps the normal image's finer detail; the mask then grows to every pixel of that fade
  that visibly differs from the normal image (`_what_changed`), so that what the detector is told is normal looks
  normal.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from dualanodiff.data import (
    Window,
    anomaly_extent,
    context_descriptor,
    crop_windows,
    jitter_side,
    load_rgb,
    load_source,
    load_training_examples,
    object_position,
    place_window,
    read_mask,
    resized_mask,
    resized_rgb,
    to_pixels,
    to_uint8,
)
from dualanodiff.errors import DataError
from dualanodiff.generation.settings import CanvasChoices
from dualanodiff.training.run import Run

FEATHER = 1 / 16  # the blend fades out over this fraction of the window's side (at least 2 pixels)
PLACEMENT_STREAM = 7  # keeps the placement's random numbers apart from the sample's noise
START_STREAM = 11  # and the starting window's apart from both
SIZE_STREAM = 13  # and the size factor's apart from all three
ORIENTATION_STREAM = 17  # and a start's orientation apart from all four
SMALLEST_WINDOW = 8  # pixels of the working resolution: a window scaled down stays at least this
CANDIDATES = 32  # places on the object compared with a training anomaly's surroundings
CHANGE_SHARE = 0.5  # of the median change inside the drawn mask: a pixel changed less than this is not the anomaly
ON_OBJECT_SLACK = 0.05  # a start's places: those with at least 1 - this of the best share of its anomaly on object
EDGE_BAND = 1 / 32  # drawn components this close to the window's edge are dropped (2 px of a 64-px window)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # brightness (ITU-R BT.601) that orders pixels to paint
RANK_SIGMA = 1.5  # working-resolution pixels: brightness is ranked smoothed, so a stroke's edge stays one edge


def _inside_the_window(mask: np.ndarray) -> np.ndarray:
    """The mask without its components that reach the band of EDGE_BAND of the side along the window's edge:
    training windows hold their anomaly whole, so what the model draws along the edge (a small model leaves
    bright strips there) is not an anomaly it learned."""
    labels, _ = ndimage.label(mask)
    band = max(1, round(EDGE_BAND * mask.shape[0]))
    edge = np.unique(np.concatenate([labels[:band].ravel(), labels[-band:].ravel(), labels[:, :band].ravel(),
                                     labels[:, -band:].ravel()]))
    return mask & ~np.isin(labels, edge[edge > 0])


class TrainingAnomalies(NamedTuple):
    pixels: torch.Tensor  # (N, 2, 3, W, W): image and anomaly part, [-1, 1]
    masks: np.ndarray  # (N, W, W) bool: the anomaly masks
    object_masks: np.ndarray  # (N, W, W) bool: the object in each anomaly image
    extents: list[tuple[float, float, int]]  # each anomaly's centre row, centre column and extent


class WindowCanvas:
    def __init__(self, run: Run):
        settings = run.settings
        self.run, self.side, self.size = run, settings.working_side, settings.resolution
        statistics = run.windows()
        self.sides = [int(side) for side in statistics["sides"]]
        self.contexts = [np.asarray(context) for context in statistics["contexts"]]
        try:
            normal = load_source(settings.data_root, settings.layout).normal_train(settings.object)
        except DataError as error:
            raise DataError(f"window canvas: the run's normal images are needed to draw into: {error}") from None
        by_stem = {path.stem: path for path in normal}
        self.paths = [by_stem[stem] for stem in run.object_mask_stems("normal") if stem in by_stem]
        if not self.paths:
            raise DataError(f"{settings.data_root}: none of the normal images {run.root} was trained with is there")
        self._loaded: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

    def _load(self, name: str) -> tuple[np.ndarray, np.ndarray | None]:
        """A normal image at the working resolution and its object mask (None when the mask marks no object, or
        everything: a texture)."""
        if name not in self._loaded:
            path = next(path for path in self.paths if path.stem == name)
            image = resized_rgb(load_rgb(path), self.side)
            objects = read_mask(self.run.object_mask_path("normal", name))
            self._loaded[name] = image, objects if objects.any() and not objects.all() else None
        return self._loaded[name]

    def place(self, index: int, seed: int, choices: CanvasChoices = CanvasChoices()) -> dict[str, Any]:
        """Sample `index`'s normal image and window: `{"normal": stem, "window": [top, left, side], "example": k}`.
        The window takes training anomaly k's side, and of `CANDIDATES` places on the object, the one whose
        surroundings look most like that anomaly's (its context descriptor). Of `choices`: a strength below 1 also
        draws the sample's `start` and places it where the object lies in the window as it lies in the start's
        (the largest overlap of the two object masks, of the places that keep the most of the start's anomaly on
        the object), so that the anomaly sits on the object where its training anomaly sat. `turns` k > 1 also
        tries the start turned by every 360/k degrees and keeps the best place and turn (its `turn`), so that on an
        object that lies at any angle (a screw) a start's anomaly sits across the object as its own did. `size_spread`
        s scales the window into which the drawn one goes (not the start's) by 2^u, u uniform in [-s, s]: the
        anomaly's size varies beyond that of the few training anomalies (0: by the side jitter alone).
        `position_width` w > 0 draws the places on an object near where that training anomaly lies on its own
        (`data.windows.object_position`: along a screw from its head, or out from a round object's centre), with
        weights exp(-d^2 / 2w^2) for a position d away, so that a neck's scratch goes on a neck (0: anywhere on the
        object)."""
        rng = np.random.default_rng([seed, index, PLACEMENT_STREAM])
        name = self.paths[int(rng.integers(len(self.paths)))].stem
        image, objects = self._load(name)
        example = int(rng.integers(len(self.sides)))
        side = jitter_side(self.sides[example], rng.random(), self.size, self.side)
        factor = 2.0 ** (choices.size_spread * (2 * np.random.default_rng([seed, index, SIZE_STREAM]).random() - 1))
        scaled = int(np.clip(round(side * factor), SMALLEST_WINDOW, self.side))
        if objects is None:
            candidates = rng.random((CANDIDATES, 2)) * self.side
        elif choices.position_width:
            inside = np.argwhere(objects) + 0.5
            gap = (object_position(objects, inside) - self._positions[example]) / choices.position_width
            weights = np.exp(-0.5 * gap ** 2)
            candidates = inside[rng.choice(len(inside), size=CANDIDATES, p=weights / weights.sum())]
        else:
            inside = np.argwhere(objects)
            candidates = inside[rng.integers(len(inside), size=CANDIDATES)] + 0.5
        windows = [place_window(row, column, scaled, *image.shape[:2]) for row, column in candidates]
        costs = np.array([np.abs(context_descriptor(image, window) - self.contexts[example]).sum()
                          for window in windows])
        placement: dict[str, Any] = {"normal": name, "example": example}
        if choices.starting:
            placement["start"] = self.start(index, seed, example, side, choices.orientations)
            if objects is not None:
                costs, turn = self._layout_costs(objects, windows, placement["start"], choices.turns)
                placement["start"].pop("turn", None)
                if turn:
                    placement["start"]["turn"] = turn
        placement["window"] = list(windows[int(np.argmin(costs))])
        return placement

    def _layout_costs(self, objects: np.ndarray, windows: Sequence[Window], start: dict[str, Any],
                      turns: int) -> tuple[np.ndarray, float]:
        """Each window's cost for `start` (minus its object layout's overlap with the start's, infinite for the
        windows that keep less than the most of the start's anomaly on the object), at the best of `turns` turns of
        the start from its own turn, and the start's turn then in degrees (of equally good turns, its own)."""
        cuts = [self._cut(objects, window) for window in windows]
        angles = [(start.get("turn", 0) + 360 * k / turns) % 360 for k in range(turns)]
        on_object, overlap = np.zeros((2, turns, len(cuts)))
        for k, angle in enumerate(angles):
            anomaly, layout = (resized_mask(self._in_start(masks, {**start, "turn": angle}), len(cuts[0]))
                               for masks in (self._training.masks, self._training.object_masks))
            on_object[k] = [(cut & anomaly).sum() for cut in cuts]
            overlap[k] = [(cut & layout).sum() / max(1, (cut | layout).sum()) for cut in cuts]
        costs = np.where(on_object >= on_object.max() * (1 - ON_OBJECT_SLACK), -overlap, np.inf)
        best = int(np.argmin(costs.min(axis=1)))  # (the first, the start's own, of equally good turns)
        return costs[best], angles[best]

    @staticmethod
    def _cut(array: np.ndarray, window: Window) -> np.ndarray:
        top, left, side = window
        return array[top:top + side, left:left + side]

    def _in_start(self, masks: np.ndarray, start: dict[str, Any]) -> np.ndarray:
        """The start's training anomaly's mask of `masks` (the anomalies' or their object masks) in its window,
        turned and flipped as the start is (working-resolution pixels)."""
        window = tuple(start["window"])
        if start.get("turn", 0) % 360:
            pixels = torch.from_numpy(masks[start["example"]][None, None].astype(np.float32))
            mask = crop_windows(pixels, [0], [window], window[2], turns=[start["turn"]])[0, 0].numpy() >= 0.5
        else:
            mask = self._cut(masks[start["example"]], window)
        for flipped, axis in zip(start["flip"], (1, 0), strict=True):
            mask = np.flip(mask, axis) if flipped else mask
        return mask

    @cached_property
    def _training(self) -> TrainingAnomalies:
        """The run's training anomalies (never a held-out one) at the working resolution, in the order of
        `Run.windows()`'s sides (the split's); read when a start first needs them."""
        settings = self.run.settings
        samples = {sample.name: sample for sample in
                   load_source(settings.data_root, settings.layout).anomaly_samples(settings.object,
                                                                                    settings.anomaly)}
        names = self.run.split()["train"]
        missing = [name for name in names if name not in samples]
        if missing:
            raise DataError(f"{settings.data_root}: the run's training anomaly {missing[0]} is not there "
                            "(a start from training anomalies needs them)")
        examples = load_training_examples([samples[name] for name in names], self.side)
        masks = examples.masks[:, 0].bool().numpy()
        object_masks = np.stack([read_mask(self.run.object_mask_path("anomaly", Path(name).stem))
                                 for name in names])  # (a window-canvas run writes them as it trains)
        return TrainingAnomalies(torch.stack([examples.images, examples.parts], dim=1), masks, object_masks,
                                 [anomaly_extent(mask) for mask in masks])

    @cached_property
    def _positions(self) -> np.ndarray:
        """Where each training anomaly (its mask's centre) lies on its own object (`object_position`)."""
        training = self._training
        return np.array([object_position(objects, [row, column])[0] if objects.any() else 0.5
                         for objects, (row, column, _) in zip(training.object_masks, training.extents, strict=True)])

    def start(self, index: int, seed: int, example: int, side: int, orientations: str = "training") -> dict[str, Any]:
        """Sample `index`'s starting window: training anomaly `example`'s window of `side`, moved by up to the slack
        between window and anomaly and flipped where the run allows it (as training windows are). With
        `orientations` "any", it is then turned by a random quarter turn and mirrored (left to right) at random: one
        of the eight orientations croppaste gives its pastes."""
        rng = np.random.default_rng([seed, index, START_STREAM])
        centre_row, centre_column, extent = self._training.extents[example]
        slack = max(side - extent, 0) / 2
        row, column = centre_row + slack * (2 * rng.random() - 1), centre_column + slack * (2 * rng.random() - 1)
        allowed = (self.run.settings.flip_horizontal, self.run.settings.flip_vertical)
        flips = [bool(enabled and rng.random() < 0.5) for enabled in allowed]
        start = {"example": example, "window": list(place_window(row, column, side, self.side, self.side)),
                 "flip": flips}
        if orientations == "any":
            turning = np.random.default_rng([seed, index, ORIENTATION_STREAM])
            turn = 90 * int(turning.integers(4))
            start["flip"][0] ^= bool(turning.random() < 0.5)
            if turn:  # (an unturned start has no turn, as without the option)
                start["turn"] = turn
        return start

    def start_windows(self, starts: Sequence[dict[str, Any]], size: int | None = None) -> torch.Tensor:
        """The starts' windows of image and anomaly part, turned and flipped as each start says, as model input
        (K, 2, 3, R, R) in [-1, 1], R the model's side (or `size`)."""
        examples, size = self._training.pixels, size or self.size
        cut = crop_windows(examples.flatten(1, 2), [start["example"] for start in starts],
                           [tuple(start["window"]) for start in starts], size,
                           turns=[start.get("turn", 0) for start in starts])
        cut = cut.view(len(starts), 2, 3, size, size)
        for k, start in enumerate(starts):
            for flipped, dim in zip(start["flip"], (-1, -2), strict=True):
                if flipped:
                    cut[k] = cut[k].flip(dim)
        return cut

    def crop(self, images: Sequence[np.ndarray], placements: Sequence[dict[str, Any]]) -> torch.Tensor:
        """The placements' windows of uint8 working-resolution images, as model input (K, 3, R, R) in [-1, 1]."""
        return crop_windows(to_pixels(images), range(len(images)), [tuple(p["window"]) for p in placements],
                            self.size)

    @cached_property
    def _palettes(self) -> list[np.ndarray]:
        """Each training anomaly's pixels (uint8, K x 3) at the working resolution, darkest first."""
        images = to_uint8(self._training.pixels[:, 0])
        return [pixels[np.argsort(pixels.astype(np.float32) @ LUMA, kind="stable")]
                for pixels in (image[mask] for image, mask in zip(images, self._training.masks, strict=True))]

    def compose(self, placement: dict[str, Any], drawn: np.ndarray, drawn_mask: np.ndarray, *,
                colours: str = "drawn") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image, anomaly part, mask) at the working resolution: the drawn window's anomaly put into the normal
        image. With `colours` "drawn", blended in (`_fade_in`): outside the mask grown by the feather, the image is
        the normal image bit for bit. With "training", the drawn mask's pixels are painted with the colours of the
        training anomaly the placement matched (`_paint_by_rank`), and every pixel outside the mask is the normal
        image's: the palette holds the real anomaly's own edge, and the model's soft halo around its stroke is what
        the painting replaces, so there is nothing to fade (a fade and a mask grown over it made painted cracks
        wider than the data's). With "start", likewise, but the mask's pixels are the start's own (`_from_start`)."""
        image, objects = self._load(placement["normal"])
        top, left, side = placement["window"]
        window = (slice(top, top + side), slice(left, left + side))
        drawn = resized_rgb(drawn, side, Image.Resampling.BICUBIC)
        scaled = np.asarray(Image.fromarray(drawn_mask.astype(np.float32)).resize((side, side),
                                                                                  Image.Resampling.BILINEAR))
        mask = np.zeros(image.shape[:2], bool)
        mask[window] = _inside_the_window(scaled >= 0.5)
        inside = objects[window] if objects is not None else np.ones((side, side), bool)
        mask[window] &= inside  # an anomaly drawn off the object is not one
        out = image.copy()
        if mask.any() and colours in ("training", "start"):
            painted = self._from_start(placement["start"], side) if colours == "start" else None
            if painted is None:
                painted = _paint_by_rank(drawn, mask[window], self._palettes[placement["example"]])
            out[window][mask[window]] = painted[mask[window]]
        elif mask.any():
            mask[window] = self._fade_in(out[window], placement, drawn.astype(np.float32), mask[window], inside)
        part = np.where(mask[..., None], out, 0).astype(np.uint8)
        return out, part, mask

    def _from_start(self, start: dict[str, Any], side: int) -> np.ndarray | None:
        """The start's own window of the real training anomaly image at `side` (uint8), each pixel off its anomaly
        replaced by the nearest pixel of its anomaly: what the model drew from the start lies near where the start's
        anomaly lay, so the drawn mask takes the real anomaly's pixels, texture and highlights included, where the
        two meet, and its nearest ones where the model moved or grew it. None when the window holds none of it."""
        anomaly = resized_mask(self._in_start(self._training.masks, start), side)
        if not anomaly.any():
            return None
        image = to_uint8(self.start_windows([start], side)[:, 0])[0]
        _, (rows, columns) = ndimage.distance_transform_edt(~anomaly, return_indices=True)
        return image[rows, columns]

    def _fade_in(self, out: np.ndarray, placement: dict[str, Any], drawn: np.ndarray, mask: np.ndarray,
                 inside: np.ndarray) -> np.ndarray:
        """Blends the drawn window into `out` (the normal image's window, changed in place): the drawn pixels
        inside `mask`, and around it, over the feather, what the model changed. Returns the mask grown to what
        visibly changed (`_what_changed`)."""
        normal = out.copy()
        feather = max(2.0, FEATHER * len(mask))
        weight = np.clip(1 - ndimage.distance_transform_edt(~mask) / feather, 0, 1) * inside
        # Around the anomaly the fade adds what the model changed, not what it could not draw: the normal window as
        # the model sees it (at its input side) is taken from the drawn one, so the normal image's finer detail (a
        # machined surface's grooves) stays, where pasting the drawn pixels would blur it.
        seen = self.crop([self._load(placement["normal"])[0]], [placement])[0]
        seen = resized_rgb(to_uint8(seen[None])[0], len(mask), Image.Resampling.BICUBIC).astype(np.float32)
        around = normal + (drawn - seen)
        blended = np.where(mask[..., None], drawn, around)
        blended = normal * (1 - weight[..., None]) + blended * weight[..., None]
        touched = weight > 0
        out[touched] = np.round(np.clip(blended[touched], 0, 255)).astype(np.uint8)
        return _what_changed(out, normal, mask, touched)


def _what_changed(out: np.ndarray, normal: np.ndarray, drawn: np.ndarray, touched: np.ndarray) -> np.ndarray:
    """The final mask: the mask from the anomaly part (`drawn`), grown to every touched pixel that differs visibly
    from the normal image it was drawn into. `drawn` says where the anomaly is, but the anomaly's soft edges and the
    fade around it change pixels it leaves out, which a detector would learn to call normal. Visibly: a change
    (largest over the colours) of at least CHANGE_SHARE of the median change inside `drawn`. Only components that
    meet `drawn` are added, holes filled, so the mask never shrinks and every pixel that differs from the normal
    image still lies within the fade of it."""
    change = np.abs(out.astype(np.int16) - normal.astype(np.int16)).max(axis=-1)
    threshold = max(1.0, CHANGE_SHARE * float(np.median(change[drawn])))
    changed = touched & (change >= threshold) | drawn
    labels, _ = ndimage.label(changed)
    meeting = np.unique(labels[drawn])
    return ndimage.binary_fill_holes(np.isin(labels, meeting[meeting > 0])) & touched | drawn


def _paint_by_rank(image: np.ndarray, mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """`image` with the pixels of `mask` painted with `palette`'s colours (a real anomaly's pixels, darkest first)
    in the order of their brightness: the darkest takes the palette's darkest colour, the median its median, and so
    on. A small model draws a crack as a soft dark stroke and a stain in one washed-out colour; ranked this way its
    shape keeps, and the colours and their shares are the real anomaly's (a crack's flat grey band, a stain's hue).
    Brightness is ranked after a blur of RANK_SIGMA pixels, so that noise does not scatter the colours."""
    brightness = ndimage.gaussian_filter(image.astype(np.float32) @ LUMA, RANK_SIGMA)[mask]
    order = np.argsort(brightness, kind="stable")
    picks = ((np.arange(len(order)) + 0.5) * len(palette) / len(order)).astype(int)  # equal quantiles
    painted_pixels = np.empty((len(order), 3), np.uint8)
    painted_pixels[order] = palette[picks]
    painted = image.copy()
    painted[mask] = painted_pixels
    return painted
