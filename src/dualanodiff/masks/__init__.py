"""Masks: the anomaly mask of a generated sample (`anomaly`), the object masks BCM needs (`objects`), and the
connected-component clean-up both use."""
