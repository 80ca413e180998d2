"""napari-dmqpm: cell segmentation for single-shot polarization quantitative phase microscopy."""

__version__ = "0.1.0"
