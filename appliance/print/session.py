"""Print state of one association: the film session, its film boxes with their image and
annotation boxes, and the presentation LUTs, with the N-CREATE / N-SET / N-DELETE semantics of
PS3.4 Annex H. DIMSE-free: methods take data sets and return what the response carries, or
raise `PrintStatus`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pydicom import Dataset
from pydicom.uid import generate_uid
from pynetdicom.sop_class import (
    BasicAnnotationBox,
    BasicColorImageBox,
    BasicFilmSession,
    BasicGrayscaleImageBox,
    PresentationLUT,
)

from appliance.print import attributes as attr
from appliance.print import dimse_status as st
from appliance.print import layout
from appliance.print.config import PrinterProfileConfig
from appliance.print.lut import PresentationLut
from appliance.print.render import FilmSpec, ImageContent, PlacementError, place_image

log = logging.getLogger(__name__)

SESSION_KEYS = {"NumberOfCopies", "PrintPriority", "MediumType", "FilmDestination",
                "FilmSessionLabel", "MemoryAllocation", "OwnerID",
                "ReferencedPresentationLUTSequence", "SpecificCharacterSet"}
FILM_BOX_SET_KEYS = {"MagnificationType", "SmoothingType", "BorderDensity", "EmptyImageDensity",
                     "MinDensity", "MaxDensity", "Trim", "ConfigurationInformation",
                     "Illumination", "ReflectedAmbientLight", "ReferencedPresentationLUTSequence",
                     "SpecificCharacterSet"}
FILM_BOX_KEYS = FILM_BOX_SET_KEYS | {"ImageDisplayFormat", "ReferencedFilmSessionSequence",
                                     "FilmOrientation", "FilmSizeID", "RequestedResolutionID",
                                     "AnnotationDisplayFormatID"}
IMAGE_BOX_KEYS = {"ImageBoxPosition", "Polarity", "MagnificationType", "SmoothingType",
                  "ConfigurationInformation", "RequestedImageSize",
                  "RequestedDecimateCropBehavior", "BasicGrayscaleImageSequence",
                  "BasicColorImageSequence", "SpecificCharacterSet"}
ANNOTATION_KEYS = {"AnnotationPosition", "TextString", "SpecificCharacterSet"}


@dataclass
class ImageBox:
    uid: str
    position: int
    content: ImageContent | None = None


@dataclass
class AnnotationBox:
    uid: str
    position: int
    text: str = ""


@dataclass
class FilmBox:
    uid: str
    spec: FilmSpec
    display_format_text: str
    lut_uid: str = ""
    image_boxes: list[ImageBox] = field(default_factory=list)
    annotation_boxes: list[AnnotationBox] = field(default_factory=list)


@dataclass
class FilmSession:
    uid: str
    copies: int = 1
    priority: str = "MED"
    medium: str = ""
    destination: str = "MAGAZINE"
    label: str = ""
    owner: str = ""
    lut_uid: str = ""
    film_boxes: list[FilmBox] = field(default_factory=list)


class PrintSession:
    """Everything one association has created. Not thread-safe: pynetdicom serves one
    association's requests one at a time."""

    def __init__(self, profile: PrinterProfileConfig, color: bool):
        self.profile = profile
        self.color = color
        self.session: FilmSession | None = None
        self.luts: dict[str, PresentationLut] = {}

    # -- Film Session ------------------------------------------------------------------------

    def create_session(self, uid: str | None, ds: Dataset) -> tuple[str, Dataset, st.Warnings]:
        if self.session is not None:
            raise st.PrintStatus(st.DUPLICATE_INSTANCE, "a film session already exists on "
                                 "this association")
        session = FilmSession(uid or generate_uid(), medium=self.profile.default_medium)
        warnings = self._apply_session(session, ds)
        self.session = session
        return session.uid, self.session_dataset(), warnings

    def set_session(self, uid: str, ds: Dataset) -> tuple[Dataset, st.Warnings]:
        session = self._session(uid)
        warnings = self._apply_session(session, ds)
        return self.session_dataset(), warnings

    def _apply_session(self, session: FilmSession, ds: Dataset) -> st.Warnings:
        warnings = st.Warnings()
        attr.check_known(ds, SESSION_KEYS, warnings)
        copies = attr.integer(ds, "NumberOfCopies", 1, 99, session.copies)
        priority = attr.enum(ds, "PrintPriority", attr.PRIORITIES, session.priority)
        medium = attr.text(ds, "MediumType", session.medium).upper()
        if medium not in self.profile.media:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, f"Medium Type {medium!r} is not "
                                 f"offered ({', '.join(self.profile.media)})")
        lut_uid = attr.referenced_uid(ds, "ReferencedPresentationLUTSequence")
        if lut_uid and lut_uid not in self.luts:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, "the referenced Presentation LUT "
                                 "does not exist")
        if "MemoryAllocation" in ds:
            warnings.add(st.MEMORY_ALLOCATION_NOT_SUPPORTED, "Memory Allocation ignored")
        session.copies, session.priority, session.medium = copies, priority, medium
        session.destination = attr.text(ds, "FilmDestination", session.destination)
        session.label = attr.text(ds, "FilmSessionLabel", session.label)
        session.owner = attr.text(ds, "OwnerID", session.owner)
        session.lut_uid = lut_uid or session.lut_uid
        return warnings

    def session_dataset(self) -> Dataset:
        s = self.session
        ds = Dataset()
        ds.NumberOfCopies = str(s.copies)
        ds.PrintPriority = s.priority
        ds.MediumType = s.medium
        ds.FilmDestination = s.destination
        ds.FilmSessionLabel = s.label
        return ds

    def delete_session(self, uid: str) -> None:
        self._session(uid)
        self.session = None

    def _session(self, uid: str) -> FilmSession:
        if self.session is None or self.session.uid != uid:
            raise st.PrintStatus(st.NO_SUCH_INSTANCE, "no such film session")
        return self.session

    # -- Film Box ----------------------------------------------------------------------------

    def create_film_box(self, uid: str | None, ds: Dataset
                        ) -> tuple[str, Dataset, st.Warnings]:
        if self.session is None:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, "no film session: create the "
                                 "film session before a film box")
        referenced = attr.referenced_uid(ds, "ReferencedFilmSessionSequence")
        if not referenced:
            raise st.PrintStatus(st.MISSING_ATTRIBUTE, "Referenced Film Session Sequence "
                                 "is required")
        if referenced != self.session.uid:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, "the referenced film session "
                                 "does not exist")
        if not attr.text(ds, "ImageDisplayFormat"):
            raise st.PrintStatus(st.MISSING_ATTRIBUTE, "Image Display Format is required")
        warnings = st.Warnings()
        attr.check_known(ds, FILM_BOX_KEYS, warnings)
        p = self.profile
        try:
            fmt = layout.parse_display_format(attr.text(ds, "ImageDisplayFormat"))
        except layout.LayoutError as exc:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, str(exc)) from exc
        if fmt.kind not in p.display_formats:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, f"Image Display Format {fmt.kind} "
                                 "is not offered by this printer")
        size = attr.text(ds, "FilmSizeID", p.default_film_size).upper()
        if size not in p.film_sizes:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, f"Film Size ID {size} is not "
                                 "offered by this printer")
        annotation = attr.enum(ds, "AnnotationDisplayFormatID", tuple(layout.ANNOTATION_FORMATS))
        spec = FilmSpec(
            display_format=fmt, film_size_id=size, dpi=p.dpi, color=self.color,
            orientation=attr.enum(ds, "FilmOrientation", attr.ORIENTATIONS, "PORTRAIT"),
            annotation_format=annotation, min_density=p.min_density / 100,
            max_density=p.max_density / 100, printer_min_density=p.min_density / 100,
            printer_max_density=p.max_density / 100, illumination=p.illumination,
            ambient=p.reflected_ambient_light)
        box = FilmBox(uid or generate_uid(), spec, attr.text(ds, "ImageDisplayFormat").upper())
        self._apply_film_box(box, ds, warnings)
        image_class = BasicColorImageBox if self.color else BasicGrayscaleImageBox
        box.image_boxes = [ImageBox(generate_uid(), i + 1) for i in range(fmt.box_count)]
        if annotation:
            count = sum(layout.ANNOTATION_FORMATS[annotation])
            box.annotation_boxes = [AnnotationBox(generate_uid(), i + 1) for i in range(count)]
        self.session.film_boxes.append(box)
        reply = self.film_box_dataset(box)
        reply.ReferencedImageBoxSequence = [_reference(image_class, b.uid)
                                            for b in box.image_boxes]
        if box.annotation_boxes:
            reply.ReferencedBasicAnnotationBoxSequence = [
                _reference(BasicAnnotationBox, b.uid) for b in box.annotation_boxes]
        return box.uid, reply, warnings

    def set_film_box(self, uid: str, ds: Dataset) -> tuple[Dataset, st.Warnings]:
        box = self.film_box(uid)
        warnings = st.Warnings()
        attr.check_known(ds, FILM_BOX_SET_KEYS, warnings)
        self._apply_film_box(box, ds, warnings)
        return self.film_box_dataset(box), warnings

    def _apply_film_box(self, box: FilmBox, ds: Dataset, warnings: st.Warnings) -> None:
        spec, p = box.spec, self.profile
        low, high = p.min_density, p.max_density
        min_d = attr.integer(ds, "MinDensity", 0, 1000, round(spec.min_density * 100))
        max_d = attr.integer(ds, "MaxDensity", 0, 1000, round(spec.max_density * 100))
        if min_d < low or max_d > high:
            warnings.add(st.DENSITY_OUT_OF_RANGE, f"densities limited to {low}-{high}")
            min_d, max_d = max(min_d, low), min(max_d, high)
        if max_d <= min_d:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, "Max Density must be above "
                                 "Min Density")
        lut_uid = attr.referenced_uid(ds, "ReferencedPresentationLUTSequence")
        if lut_uid and lut_uid not in self.luts:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, "the referenced Presentation LUT "
                                 "does not exist")
        spec.min_density, spec.max_density = min_d / 100, max_d / 100
        spec.magnification = attr.enum(ds, "MagnificationType", attr.MAGNIFICATIONS,
                                       spec.magnification)
        spec.border_density = attr.density(ds, "BorderDensity", spec.max_density,
                                           spec.min_density, spec.border_density)
        spec.empty_density = attr.density(ds, "EmptyImageDensity", spec.max_density,
                                          spec.min_density, spec.empty_density)
        spec.trim = attr.enum(ds, "Trim", attr.BOOLEAN, "YES" if spec.trim else "NO") == "YES"
        spec.illumination = attr.number(ds, "Illumination", spec.illumination)
        spec.ambient = attr.number(ds, "ReflectedAmbientLight", spec.ambient)
        if spec.illumination <= 0:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, "Illumination must be above 0")
        box.lut_uid = lut_uid or box.lut_uid

    def film_box_dataset(self, box: FilmBox) -> Dataset:
        spec = box.spec
        ds = Dataset()
        ds.ImageDisplayFormat = box.display_format_text
        ds.FilmOrientation = spec.orientation
        ds.FilmSizeID = spec.film_size_id
        ds.MagnificationType = spec.magnification
        ds.MinDensity = round(spec.min_density * 100)
        ds.MaxDensity = round(spec.max_density * 100)
        ds.BorderDensity = str(round(spec.border_density * 100))
        ds.EmptyImageDensity = str(round(spec.empty_density * 100))
        ds.Trim = "YES" if spec.trim else "NO"
        ds.Illumination = round(spec.illumination)
        ds.ReflectedAmbientLight = round(spec.ambient)
        ds.ReferencedFilmSessionSequence = [_reference(BasicFilmSession, self.session.uid)]
        if box.lut_uid:
            ds.ReferencedPresentationLUTSequence = [_reference(PresentationLUT, box.lut_uid)]
        if spec.annotation_format:
            ds.AnnotationDisplayFormatID = spec.annotation_format
        return ds

    def film_box(self, uid: str) -> FilmBox:
        for box in self.session.film_boxes if self.session else []:
            if box.uid == uid:
                return box
        raise st.PrintStatus(st.NO_SUCH_INSTANCE, "no such film box")

    def delete_film_box(self, uid: str) -> None:
        self.session.film_boxes.remove(self.film_box(uid))

    # -- Image Box and Annotation Box --------------------------------------------------------

    def set_image_box(self, uid: str, ds: Dataset) -> tuple[Dataset, st.Warnings]:
        film, image_box = self._find_box(uid, "image_boxes")
        warnings = st.Warnings()
        attr.check_known(ds, IMAGE_BOX_KEYS, warnings)
        position = attr.integer(ds, "ImageBoxPosition", 1, 1000, image_box.position)
        if position != image_box.position:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, f"Image Box Position {position} "
                                 f"is not this box's ({image_box.position})")
        keyword = "BasicColorImageSequence" if self.color else "BasicGrayscaleImageSequence"
        other = "BasicGrayscaleImageSequence" if self.color else "BasicColorImageSequence"
        if other in ds:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, f"{other} on a "
                                 f"{'color' if self.color else 'grayscale'} image box")
        seq = ds.get(keyword)
        if seq is None and image_box.content is None:
            raise st.PrintStatus(st.MISSING_ATTRIBUTE, f"{keyword} is required")
        old = image_box.content
        if seq is not None and len(seq) == 0:
            image_box.content = None
            return self._image_reply(image_box), warnings
        if seq is not None:
            pixels, bits, photometric = attr.pixel_array(seq[0], self.color)
            aspect = attr.aspect_ratio(seq[0])
        else:
            pixels, bits, photometric, aspect = (old.pixels, old.bits_stored, old.photometric,
                                                 old.aspect)
        content = ImageContent(
            pixels=pixels, bits_stored=bits, photometric=photometric, aspect=aspect,
            polarity=attr.enum(ds, "Polarity", attr.POLARITIES,
                               old.polarity if old else "NORMAL"),
            magnification=attr.enum(ds, "MagnificationType", attr.MAGNIFICATIONS,
                                    old.magnification if old else ""),
            requested_size_mm=attr.number(ds, "RequestedImageSize",
                                          old.requested_size_mm if old else 0.0),
            decimate_crop=attr.enum(ds, "RequestedDecimateCropBehavior", attr.DECIMATE_CROP,
                                    old.decimate_crop if old else "DECIMATE"))
        _, _, boxes, _ = film.spec.geometry()
        rect = boxes[image_box.position - 1]
        try:
            placement = place_image(pixels.shape[0], pixels.shape[1], aspect, rect,
                                    content.magnification or film.spec.magnification,
                                    content.requested_size_mm, film.spec.dpi,
                                    content.decimate_crop)
        except PlacementError as exc:
            raise st.PrintStatus(st.IMAGE_LARGER_THAN_BOX, str(exc)) from exc
        if placement.status:
            warnings.add(placement.status, {st.DEMAGNIFIED: "image demagnified",
                                            st.CROPPED: "image cropped to fit",
                                            st.DECIMATED: "image decimated to fit"}
                         [placement.status])
        image_box.content = content
        return self._image_reply(image_box), warnings

    def _image_reply(self, image_box: ImageBox) -> Dataset:
        ds = Dataset()
        ds.ImageBoxPosition = image_box.position
        if image_box.content:
            ds.Polarity = image_box.content.polarity
        return ds

    def set_annotation_box(self, uid: str, ds: Dataset) -> tuple[Dataset, st.Warnings]:
        _, box = self._find_box(uid, "annotation_boxes")
        warnings = st.Warnings()
        attr.check_known(ds, ANNOTATION_KEYS, warnings)
        position = attr.integer(ds, "AnnotationPosition", 1, 100, box.position)
        if position != box.position:
            raise st.PrintStatus(st.INVALID_ATTRIBUTE_VALUE, f"Annotation Position {position} "
                                 f"is not this box's ({box.position})")
        box.text = attr.text(ds, "TextString", box.text)
        reply = Dataset()
        reply.AnnotationPosition = box.position
        reply.TextString = box.text
        return reply, warnings

    def _find_box(self, uid: str, kind: str):
        for film in self.session.film_boxes if self.session else []:
            for box in getattr(film, kind):
                if box.uid == uid:
                    return film, box
        raise st.PrintStatus(st.NO_SUCH_INSTANCE, "no such image box" if kind == "image_boxes"
                             else "no such annotation box")

    # -- Presentation LUT --------------------------------------------------------------------

    def create_lut(self, uid: str | None, ds: Dataset) -> tuple[str, Dataset, st.Warnings]:
        warnings = st.Warnings()
        attr.check_known(ds, {"PresentationLUTShape", "PresentationLUTSequence",
                              "SpecificCharacterSet"}, warnings)
        lut = attr.presentation_lut(ds)
        uid = uid or generate_uid()
        self.luts[uid] = lut
        reply = Dataset()
        if lut.shape:
            reply.PresentationLUTShape = lut.shape
        return uid, reply, warnings

    def delete_lut(self, uid: str) -> None:
        if self.luts.pop(uid, None) is None:
            raise st.PrintStatus(st.NO_SUCH_INSTANCE, "no such presentation LUT")

    # -- printing ----------------------------------------------------------------------------

    def film_specs(self, boxes: list[FilmBox]) -> list[FilmSpec]:
        """Snapshots of the films to print: the LUT of the film box, else of the session."""
        specs = []
        for box in boxes:
            lut_uid = box.lut_uid or self.session.lut_uid
            spec = FilmSpec(**{**box.spec.__dict__,
                               "lut": self.luts.get(lut_uid, PresentationLut()),
                               "images": {b.position: b.content for b in box.image_boxes
                                          if b.content is not None},
                               "annotations": {b.position: b.text for b in box.annotation_boxes
                                               if b.text}})
            specs.append(spec)
        return specs


def _reference(sop_class: str, uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = uid
    return item

