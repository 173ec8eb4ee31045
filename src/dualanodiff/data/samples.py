"""One anomaly training example on disk: an image and its mask (what splits sort, record and hold out)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AnomalySample:
    """One anomaly image and its mask."""

    image_path: Path
    mask_path: Path

    @property
    def name(self) -> str:
        """The image's file name (what splits are sorted and recorded by)."""
        return self.image_path.name
