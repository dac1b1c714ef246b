"""The `pacs` printer driver of the print service (print-to-PACS): each film becomes a DICOM
Secondary Capture Image Storage object carrying the patient and study the film belongs to,
handed to the appliance to store and forward like any received image.

The driver knows nothing of the worklist, the database or the forwarder: print_to_pacs.py
passes two hooks when the profile's printer is opened (profiles.py):

- `find_context(info) -> dict | None`: the patient/study attributes for a film (DICOM keywords:
  PatientName, PatientID, PatientBirthDate, PatientSex, AccessionNumber, StudyInstanceUID,
  StudyID, StudyDate, StudyTime, ReferringPhysicianName, Modality, plus `source` saying where
  they came from), given `film.info` (calling AE title, ...). None means nothing matched.
- `store_instance(dataset, info) -> list[str]`: store the object durably and queue it for the
  forwarder; returns the destinations it was queued for. Raises on failure.
- optionally `ready() -> str` (why a film cannot be stored now, '' when it can: the printer
  then reports FAILURE and jobs wait) and `on_close()`.

No match means no object: the film fails with a message naming the calling AE, because a
film filed under a made-up patient is a wrong-patient image in the PACS (see README).

The pixels are the film as printed: 8-bit MONOCHROME2 (the film's driving values: 255 is the
least density, i.e. what looks brightest on a light box) or 8-bit RGB. UIDs are made under
`uid_root`; the SOP Instance UID is derived from the print job and page, so a job printed
again after a crash gives the same UID (kept once) instead of a second copy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

from hal.printer.interface import Film, Printer, PrinterError, PrinterState

log = logging.getLogger(__name__)

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
DEFAULT_UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root; a site sets its own
SERIES_NUMBER = 9900   # printed films sort after the modality's own series
CONTEXT_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                    "AccessionNumber", "StudyInstanceUID", "StudyID", "StudyDate", "StudyTime",
                    "ReferringPhysicianName")


class PacsPrinter(Printer):
    driver = "pacs"

    def __init__(self, name: str, find_context: Callable[[dict], dict | None] | None = None,
                 store_instance: Callable[[Dataset, dict], list[str]] | None = None,
                 uid_root: str = DEFAULT_UID_ROOT, station_name: str = "EDGEBOX",
                 ready: Callable[[], str] | None = None,
                 on_close: Callable[[], None] | None = None, **_ignored):
        super().__init__(name)
        if find_context is None or store_instance is None:
            raise PrinterError("the pacs driver needs the appliance's find_context and "
                               "store_instance hooks (it prints through the forwarder)")
        self.find_context, self.store_instance = find_context, store_instance
        self.uid_root = uid_root if uid_root.endswith(".") else uid_root + "."
        self.station_name = station_name
        self.ready, self.on_close = ready, on_close

    def status(self) -> PrinterState:
        if self.ready is not None:
            try:
                problem = self.ready()
            except Exception as exc:  # status() never raises
                problem = f"cannot check the store: {exc}"
            if problem:
                return PrinterState("FAILURE", "PRINTER DOWN", problem)
        return PrinterState()

    def print_film(self, film: Film) -> None:
        calling = str(film.info.get("calling_aet", "")).strip()
        context = self.find_context(dict(film.info))
        if not context:
            raise PrinterError(
                f"print-to-PACS: no worklist item for station {calling or '(unknown AE)'} "
                "today and no study stored from it recently: refusing to file the film "
                "under an unknown patient")
        dataset = self.secondary_capture(film, context)
        destinations = self.store_instance(dataset, dict(film.info))
        log.info("film %s page %d stored as Secondary Capture %s for patient %s (%s), "
                 "queued for %s", film.job_id, film.page, dataset.SOPInstanceUID,
                 context.get("PatientID", ""), context.get("source", ""),
                 ", ".join(destinations) or "no destination")

    def secondary_capture(self, film: Film, context: dict) -> Dataset:
        """The film as a Secondary Capture Image Storage data set with its file meta."""
        now = time.localtime()
        date, clock = time.strftime("%Y%m%d", now), time.strftime("%H%M%S", now)
        uid = self._uid(film.job_id, "page", str(film.page))
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID = SECONDARY_CAPTURE
        ds.SOPInstanceUID = uid
        for keyword in CONTEXT_KEYWORDS:
            setattr(ds, keyword, str(context.get(keyword, "") or ""))
        if not ds.StudyInstanceUID:
            raise PrinterError("print-to-PACS: the matched study has no Study Instance UID")
        ds.Modality = str(context.get("Modality") or "OT")
        ds.ConversionType = "WSD"  # workstation: a film page made by the print server
        ds.SeriesInstanceUID = self._uid(film.job_id, "series")
        ds.SeriesNumber = SERIES_NUMBER
        ds.SeriesDescription = f"Printed film {film.label}".strip()[:64]
        ds.SeriesDate = ds.ContentDate = ds.InstanceCreationDate = date
        ds.SeriesTime = ds.ContentTime = ds.InstanceCreationTime = clock
        ds.DateOfSecondaryCapture, ds.TimeOfSecondaryCapture = date, clock
        ds.InstanceNumber = film.page
        ds.StationName = self.station_name[:16]
        ds.Manufacturer = "DICOM Edge Appliance"
        ds.SecondaryCaptureDeviceManufacturer = "DICOM Edge Appliance"
        ds.ImageComments = (f"Film {film.film_size_id} {film.orientation} at {film.dpi} dpi, "
                            f"printed by {film.info.get('calling_aet', '')}; patient data "
                            f"from {context.get('source', '')}")[:10240]
        ds.PatientOrientation = ""
        ds.BurnedInAnnotation = "YES"   # film annotations are in the pixels
        self._pixels(ds, film)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
        meta.MediaStorageSOPInstanceUID = uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds.file_meta = meta
        return ds

    @staticmethod
    def _pixels(ds: Dataset, film: Film) -> None:
        image = film.image
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB" if image.mode in ("RGBA", "P", "CMYK") else "L")
        ds.Columns, ds.Rows = image.size
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        mm_per_px = f"{25.4 / film.dpi:.6f}"
        ds.NominalScannedPixelSpacing = [mm_per_px, mm_per_px]  # the film's own scale
        if image.mode == "RGB":
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, "RGB"
            ds.PlanarConfiguration = 0
        else:
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelData = image.tobytes()

    def close(self) -> None:
        if self.on_close is not None:
            self.on_close()

    def _uid(self, *parts: str) -> str:
        return generate_uid(prefix=self.uid_root, entropy_srcs=[self.name, *parts])
