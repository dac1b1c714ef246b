"""DICOM services: one pynetdicom AE on one port, with a small module of handlers per service."""
