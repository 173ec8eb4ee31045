"""The data layer: data sets (MVTec AD or a custom layout), the few-shot split, image and mask loading, the
training examples, and a built-in synthetic data set."""

from dualanodiff.lazy import lazy_exports

# Imported on first use: `dualanodiff data` checks a data set without importing torch.
_EXPORTS = {
    "load_anomalies": "dualanodiff.data.arrays",
    "load_images": "dualanodiff.data.arrays",
    "TrainingExamples": "dualanodiff.data.examples",
    "load_training_examples": "dualanodiff.data.examples",
    "IMAGE_SUFFIXES": "dualanodiff.data.images",
    "binarise": "dualanodiff.data.images",
    "load_mask": "dualanodiff.data.images",
    "load_rgb": "dualanodiff.data.images",
    "read_mask": "dualanodiff.data.images",
    "LAYOUT_FILE_NAME": "dualanodiff.data.layout",
    "read_layout": "dualanodiff.data.layout",
    "load_pixels": "dualanodiff.data.pixels",
    "resized_mask": "dualanodiff.data.pixels",
    "resized_rgb": "dualanodiff.data.pixels",
    "to_pixels": "dualanodiff.data.pixels",
    "to_uint8": "dualanodiff.data.pixels",
    "AnomalySample": "dualanodiff.data.samples",
    "DataSource": "dualanodiff.data.source",
    "load_source": "dualanodiff.data.source",
    "Split": "dualanodiff.data.split",
    "make_split": "dualanodiff.data.split",
    "read_split": "dualanodiff.data.split",
    "split_record": "dualanodiff.data.split",
    "split_rule_text": "dualanodiff.data.split",
    "write_split": "dualanodiff.data.split",
    "write_synthetic": "dualanodiff.data.synthetic",
    "Window": "dualanodiff.data.windows",
    "anomaly_extent": "dualanodiff.data.windows",
    "context_descriptor": "dualanodiff.data.windows",
    "object_position": "dualanodiff.data.windows",
    "crop_windows": "dualanodiff.data.windows",
    "jitter_side": "dualanodiff.data.windows",
    "place_window": "dualanodiff.data.windows",
    "window_side": "dualanodiff.data.windows",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
