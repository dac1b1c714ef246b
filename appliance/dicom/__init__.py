"""DICOM services: one native (DCMTK) listener on one port (`engine_server`), with a small module
of pynetdicom-style handlers per service; pynetdicom itself only on the SCU side."""
