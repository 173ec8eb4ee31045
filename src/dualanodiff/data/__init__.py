"""The data layer: data sets (MVTec AD or a custom layout), the few-shot split, image and mask loading, the
training Dataset, and a built-in synthetic data set."""

from dualanodiff.data.images import IMAGE_SUFFIXES, load_mask, load_rgb
from dualanodiff.data.layout import LAYOUT_FILE_NAME, read_layout
from dualanodiff.data.pixels import load_pixels, resize_image, to_pixels, to_uint8
from dualanodiff.data.source import AnomalySample, DataSource, load_source
from dualanodiff.data.split import Split, make_split, read_split, split_rule_text, write_split
from dualanodiff.data.synthetic import write_synthetic
from dualanodiff.data.training_set import AnomalyTrainingSet

__all__ = [
    "IMAGE_SUFFIXES",
    "LAYOUT_FILE_NAME",
    "AnomalySample",
    "AnomalyTrainingSet",
    "DataSource",
    "Split",
    "load_mask",
    "load_pixels",
    "load_rgb",
    "load_source",
    "make_split",
    "read_layout",
    "read_split",
    "resize_image",
    "split_rule_text",
    "to_pixels",
    "to_uint8",
    "write_split",
    "write_synthetic",
]
