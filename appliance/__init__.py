"""DICOM Edge Appliance: firmware that bridges legacy modalities and printers into a DICOM network.

Read top-down: `appliance.cli` parses the command line, `appliance.core.supervisor` runs the
components, and each component lives in its own package (`appliance.dicom`, ...).
"""

__version__ = "0.1.0"
