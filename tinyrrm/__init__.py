"""tinyrrm: LR-MPGNN beamforming from PyTorch to Cortex-M."""

__version__ = "0.1.0"
