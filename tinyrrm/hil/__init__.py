"""Hardware-in-the-loop harness: one framed protocol (docs/PROTOCOL.md) over
QEMU's serial socket or a real board's serial port.

Imports only the standard library and numpy (pyserial for real ports,
pyelftools for ELF sizes), so the lean HIL image needs no torch or TensorFlow.
"""
