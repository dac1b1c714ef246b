"""Rendered films against expected images built here independently: geometry of every display
format and orientation, densities through LIN OD and the GSDF, polarity, bit depths, color,
annotations and trim. Films are printed at 50 dpi by the file driver and read back from PNG."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from pydicom import Dataset
from pynetdicom.sop_class import BasicAnnotationBox, PresentationLUT

from tests.print.conftest import boxes_of, reference

DPI = 50
PROFILE = {"name": "film", "dpi": DPI, "min_density": 20, "max_density": 300}


def lin_od(client) -> str:
    ds = Dataset()
    ds.PresentationLUTShape = "LIN OD"
    status, _ = client.create(PresentationLUT, ds)
    return status.AffectedSOPInstanceUID


def printed(server, client, **film_box) -> np.ndarray:
    status, action = client.action()
    assert status.Status in (0x0000, 0xB603), hex(status.Status)
    uid = action.ReferencedPrintJobSequence[0].ReferencedSOPInstanceUID
    job = server.spool.wait_job(uid)
    assert job["status"] == "DONE", job
    png, pdf = server.spool.printers["film"].paths_for(uid, 1)
    return np.asarray(Image.open(png))


def flat(value: int, shape=(10, 10), dtype=np.uint8) -> np.ndarray:
    return np.full(shape, value, dtype=dtype)


def test_standard_geometry_border_empty_and_lin_od_densities(print_server, scu):
    server = print_server([PROFILE])
    client = scu(server.port)
    client.session(ReferencedPresentationLUTSequence=[reference(PresentationLUT,
                                                                lin_od(client))])
    _, reply = client.film_box("STANDARD\\2,1", FilmSizeID="8INX10IN", BorderDensity="WHITE",
                               EmptyImageDensity="BLACK", MagnificationType="REPLICATE")
    client.set_image(boxes_of(reply)[0], 1, flat(64))
    film = printed(server, client)
    # expected: 400x500 px; box 1 = x 0-199, box 2 = x 200-399; the 10x10 image is scaled
    # 20x to 200x200 and centred (y 150-349); LIN OD with film = printer densities gives
    # driving value = 255 * (3.0 - D) / 2.8 where D = 3.0 - 64/255 * 2.8, i.e. 64.
    expected = np.full((500, 400), 255, np.uint8)       # WHITE border = Dmin
    expected[:, 200:] = 0                                # BLACK empty box = Dmax
    expected[150:350, 0:200] = 64
    assert film.shape == expected.shape
    assert np.abs(film.astype(int) - expected).max() <= 1


def test_reverse_polarity_and_monochrome1(print_server, scu):
    server = print_server([PROFILE])
    client = scu(server.port)
    client.session(ReferencedPresentationLUTSequence=[reference(PresentationLUT,
                                                                lin_od(client))])
    _, reply = client.film_box("STANDARD\\3,1", FilmSizeID="8INX10IN")
    uids = boxes_of(reply)
    client.set_image(uids[0], 1, flat(200))
    client.set_image(uids[1], 2, flat(200), Polarity="REVERSE")
    client.set_image(uids[2], 3, flat(200), photometric="MONOCHROME1")
    film = printed(server, client)
    centre_y = 250
    xs = [round(400 * (i + 0.5) / 3) for i in range(3)]
    assert abs(int(film[centre_y, xs[0]]) - 200) <= 1
    assert abs(int(film[centre_y, xs[1]]) - 55) <= 1     # 255 - 200
    assert abs(int(film[centre_y, xs[2]]) - 55) <= 1


def gsdf_l(j: float) -> float:
    """PS3.14 B.1, written out again here from the standard's coefficients."""
    a, b, c, d, e = -1.3011877, -0.025840191, 0.080242636, -0.10320229, 0.13646699
    f, g, h, k, m = 0.028745620, -0.025468404, -0.0031978977, 0.00012992634, 0.0013635334
    x = math.log(j)
    return 10 ** ((a + c * x + e * x**2 + g * x**3 + m * x**4) /
                  (1 + b * x + d * x**2 + f * x**3 + h * x**4 + k * x**5))


def gsdf_j(lum: float) -> float:
    coef = [71.498068, 94.593053, 41.912053, 9.8247004, 0.28175407, -1.1878455,
            -0.18014349, 0.14710899, -0.017046845]
    x = math.log10(lum)
    return sum(c * x**i for i, c in enumerate(coef))


def test_identity_lut_goes_through_the_gsdf_with_illumination_and_ambient(print_server, scu):
    server = print_server([PROFILE])
    client = scu(server.port)
    client.session()
    _, reply = client.film_box("STANDARD\\3,1", FilmSizeID="8INX10IN", Illumination=2000,
                               ReflectedAmbientLight=10)
    uids = boxes_of(reply)
    for i, value in enumerate((0, 128, 255)):
        client.set_image(uids[i], i + 1, flat(value))
    film = printed(server, client)
    xs = [round(400 * (i + 0.5) / 3) for i in range(3)]
    got = [int(film[250, x]) for x in xs]
    # expected density of P-value 128/255 between L(Dmax=3.0) and L(Dmin=0.2)
    l0, la = 2000.0, 10.0
    j_lo, j_hi = gsdf_j(la + l0 * 10 ** -3.0), gsdf_j(la + l0 * 10 ** -0.2)
    lum = gsdf_l(j_lo + 128 / 255 * (j_hi - j_lo))
    density = -math.log10((lum - la) / l0)
    expected_mid = round(255 * (3.0 - density) / 2.8)
    assert got[0] == 0 and got[2] == 255
    assert abs(got[1] - expected_mid) <= 1
    assert got[1] != 128          # perceptual, not linear in density


def test_explicit_presentation_lut_data(print_server, scu):
    server = print_server([PROFILE])
    client = scu(server.port)
    lut = Dataset()
    item = Dataset()
    item.LUTDescriptor = [256, 0, 12]
    item.LUTData = np.array([4095 - 16 * v for v in range(256)], "<u2").tobytes()  # inverting
    lut.PresentationLUTSequence = [item]
    status, _ = client.create(PresentationLUT, lut)
    assert status.Status == 0x0000
    client.session()
    _, reply = client.film_box("STANDARD\\1,1", FilmSizeID="8INX10IN",
                               ReferencedPresentationLUTSequence=[
                                   reference(PresentationLUT, status.AffectedSOPInstanceUID)])
    client.set_image(boxes_of(reply)[0], 1, flat(0))
    film = printed(server, client)
    assert film[250, 200] == 255        # input 0 -> P-value max -> least density


def test_row_and_col_formats_place_positions(print_server, scu):
    server = print_server([PROFILE])
    client = scu(server.port)
    client.session(ReferencedPresentationLUTSequence=[reference(PresentationLUT,
                                                                lin_od(client))])
    for fmt, centres in (
        # ROW\1,2: row 1 one box across, row 2 two boxes; positions row-major
        ("ROW\\1,2", [(125, 200), (375, 100), (375, 300)]),
        # COL\2,1: column 1 two boxes (positions 1, 2 top to bottom), column 2 one box
        ("COL\\2,1", [(125, 100), (375, 100), (250, 300)]),
    ):
        _, reply = client.film_box(fmt, FilmSizeID="8INX10IN", BorderDensity="WHITE")
        uids = boxes_of(reply)
        assert len(uids) == 3
        for i, uid in enumerate(uids):
            client.set_image(uid, i + 1, flat(40 * (i + 1)))
        film = printed(server, client)
        for i, (y, x) in enumerate(centres):
            assert abs(int(film[y, x]) - 40 * (i + 1)) <= 1, (fmt, i)


def test_film_sizes_and_landscape(print_server, scu):
    server = print_server([PROFILE])
    client = scu(server.port)
    client.session()
    for size, orientation, shape in (("14INX17IN", "PORTRAIT", (850, 700)),
                                     ("14INX17IN", "LANDSCAPE", (700, 850)),
                                     ("A4", "PORTRAIT", (585, 413)),
                                     ("24CMX30CM", "LANDSCAPE", (472, 591))):
        client.film_box("STANDARD\\1,1", FilmSizeID=size, FilmOrientation=orientation)
        assert printed(server, client).shape == shape, (size, orientation)


def test_twelve_bit_pixels(print_server, scu):
    server = print_server([PROFILE])
    client = scu(server.port)
    client.session(ReferencedPresentationLUTSequence=[reference(PresentationLUT,
                                                                lin_od(client))])
    _, reply = client.film_box("STANDARD\\2,1", FilmSizeID="8INX10IN")
    uids = boxes_of(reply)
    client.set_image(uids[0], 1, flat(4095, dtype=np.uint16), bits_stored=12)
    client.set_image(uids[1], 2, flat(1024, dtype=np.uint16), bits_stored=12)
    film = printed(server, client)
    assert film[250, 100] == 255
    assert abs(int(film[250, 300]) - round(1024 / 4095 * 255)) <= 1


def test_magnification_none_keeps_pixel_size_and_requested_size_sets_width(print_server, scu):
    server = print_server([PROFILE])
    client = scu(server.port)
    client.session()
    _, reply = client.film_box("STANDARD\\2,1", FilmSizeID="8INX10IN", BorderDensity="WHITE")
    uids = boxes_of(reply)
    client.set_image(uids[0], 1, flat(0, (20, 20)), MagnificationType="NONE")
    client.set_image(uids[1], 2, flat(0, (20, 20)), RequestedImageSize="50.8")  # 2 in = 100 px
    film = printed(server, client)
    dark_left = np.argwhere(film[:, :200] < 128)
    dark_right = np.argwhere(film[:, 200:] < 128)
    assert dark_left.max(0).tolist() == [259, 109] and dark_left.min(0).tolist() == [240, 90]
    assert (dark_right.max(0) - dark_right.min(0) + 1).tolist() == [100, 100]


def test_color_film_keeps_rgb(print_server, scu):
    server = print_server([{**PROFILE, "color": True}])
    client = scu(server.port, color=True)
    assert client.session()[0].Status == 0x0000
    _, reply = client.film_box("STANDARD\\2,1", FilmSizeID="A4", BorderDensity="WHITE")
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 30
    uids = boxes_of(reply)
    assert client.set_image(uids[0], 1, rgb)[0].Status == 0x0000
    assert client.set_image(uids[1], 2, rgb, Polarity="REVERSE")[0].Status == 0x0000
    film = printed(server, client)
    assert film.shape == (585, 413, 3)
    assert film[292, 103].tolist() == [200, 100, 30]
    assert film[292, 310].tolist() == [55, 155, 225]
    assert film[5, 5].tolist() == [255, 255, 255]


def test_color_refused_on_a_grayscale_printer(print_server, scu):
    client = scu(print_server([PROFILE]).port, color=True)
    assert client.session()[0].Status == 0x0110


def test_annotation_text_is_drawn_in_its_band(print_server, scu):
    server = print_server([PROFILE])
    client = scu(server.port)
    client.session()
    _, reply = client.film_box("STANDARD\\1,1", FilmSizeID="8INX10IN", BorderDensity="WHITE",
                               AnnotationDisplayFormatID="TOP_BOTTOM")
    notes = [str(i.ReferencedSOPInstanceUID) for i in reply.ReferencedBasicAnnotationBoxSequence]
    ds = Dataset()
    ds.AnnotationPosition = 1
    ds.TextString = "PATIENT X"
    client.set(BasicAnnotationBox, notes[0], ds)
    film = printed(server, client)
    band = round(8 / 25.4 * DPI)
    assert (film[:band] < 128).sum() > 20          # text in the top band
    assert (film[-band:] < 128).sum() == 0         # nothing in the empty bottom one


def test_trim_draws_a_frame_around_the_image(print_server, scu):
    server = print_server([PROFILE])
    client = scu(server.port)
    client.session()
    _, reply = client.film_box("STANDARD\\1,1", FilmSizeID="8INX10IN", BorderDensity="WHITE",
                               Trim="YES")
    client.set_image(boxes_of(reply)[0], 1, flat(255))   # white image on white border
    film = printed(server, client)
    # image 400x400 at y 50-449: a dark frame one pixel outside it
    assert film[49, 200] < 10 and film[450, 200] < 10
    assert film[250, 200] == 255 and film[10, 200] == 255


def keys_cubic(x: float, a: float = -0.5) -> float:
    """The cubic convolution kernel (Keys 1981, a = -0.5), written out here."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def test_replicate_bilinear_and_cubic_magnification(print_server, scu):
    # an 8x8 image, dark left half and bright right half, magnified 50x to 400x400 on a
    # 400x500 film; with LIN OD on matching densities, driving value = pixel value, so a row of
    # the film is the magnified row itself. Output pixel x samples the source at
    # s = (x + 0.5) / 50 - 0.5 (pixel centres at 0..7).
    server = print_server([PROFILE])
    source = np.zeros((8, 8), np.uint8)
    source[:, 4:] = 255
    xs = np.arange(400)
    s = (xs + 0.5) / 50 - 0.5
    rows = {}
    for magnification in ("REPLICATE", "BILINEAR", "CUBIC"):
        client = scu(server.port)
        client.session(ReferencedPresentationLUTSequence=[reference(PresentationLUT,
                                                                    lin_od(client))])
        _, reply = client.film_box("STANDARD\\1,1", FilmSizeID="8INX10IN",
                                   MagnificationType=magnification)
        client.set_image(boxes_of(reply)[0], 1, source)
        film = printed(server, client).astype(int)
        assert np.all(film[:50] == 255) and np.all(film[450:] == 255)   # white border
        rows[magnification] = film[250]
        client.close()

    replicate = np.where(xs >= 200, 255, 0)
    assert np.abs(rows["REPLICATE"] - replicate).max() <= 1

    bilinear = np.interp(s, np.arange(8), source[0].astype(float))
    assert np.abs(rows["BILINEAR"] - bilinear).max() <= 2

    middle = (s >= 3) & (s <= 4)            # taps 2..5 = 0, 0, 255, 255: all inside the image
    t = s[middle] - 3
    cubic = 255 * np.array([keys_cubic(1 - v) + keys_cubic(2 - v) for v in t])
    assert np.abs(rows["CUBIC"][middle] - cubic).max() <= 2
    assert np.abs(rows["CUBIC"][middle] - bilinear[middle]).max() > 10  # a different curve
