"""hctree: deep hierarchical clustering of images with GANs, in one resumable HDF5 file."""

__version__ = "0.1.0"
