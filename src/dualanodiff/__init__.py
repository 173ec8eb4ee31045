"""DualAnoDiff: few-shot anomaly image and mask generation with a dual-interrelated diffusion model."""

__version__ = "0.1.0"
