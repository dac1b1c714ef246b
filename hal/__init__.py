"""Hardware abstraction layer: printers, LEDs, front panel and serial link.

Knows nothing of DICOM and never imports `appliance`. Every device has a simulated backend
that is chosen explicitly by configuration, never by silent fallback.
"""
