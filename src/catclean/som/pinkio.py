"""PINK binary files, version 2 (paper 004 Sec. 2.1, 3.2; PINK ``FILE_FORMATS.md``).

All header numbers are little-endian 32-bit ints; data are float32 (data type 0 is the only
one PINK supports). Every file may start with comment lines whose first byte is ``#``;
PINK (``get_file_header``) consumes such lines up to and including ``# END OF HEADER``
(or up to the first line not starting with ``#``) and copies the block of an ``--init``
SOM into the SOM it writes. Layouts::

    image file      2 0 <dtype> <n entries> <layout> <rank> <dims...> <data>
    SOM file        2 1 <dtype> <som layout> <som rank> <som dims...>
                        <neuron layout> <neuron rank> <neuron dims...> <data>
    mapping file    2 2 <dtype> <n entries> <som layout> <som rank> <som dims...> <data>
    transform file  2 3 <n entries> <som layout> <som rank> <som dims...>
                        <per entry, per neuron: int8 flip, float32 angle [rad]> (5 bytes)

Layout 0 = cartesian (C order, last dimension fastest), 1 = hexagonal (rows of
``d - |r - R|`` neurons). A single-channel image/neuron has rank 2 ``(H, W)``, a
multi-channel one rank 3 ``(C, H, W)``. PINK 2.x writes ``som layout = 0`` in SOM,
mapping and transform files even for a hexagonal SOM; we write the true layout code and
read both.

pyink's header handling (``pyink/binwrap.py``) has a known bug we do not copy:
``header_offset`` iterates binary lines, which keep their trailing ``b"\\n"``, and compares
them with ``b"# END OF HEADER"`` (no newline), so the end marker is never found: it returns
offset 0 when the next line is binary (the comment is then parsed as header ints) or raises
"Unbroken Comment Section"; ``ImageWriter`` also writes ``f"# {comment}"`` without a
newline, gluing the comment and the end marker on one line. Here every comment line is
newline-terminated, and the marker is matched after stripping ``\\r\\n``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VERSION = 2
END_OF_HEADER = b"# END OF HEADER"
FILE_TYPES = {"image": 0, "som": 1, "mapping": 2, "transform": 3}
TRANSFORM_DTYPE = np.dtype([("flip", "i1"), ("angle", "<f4")])  # packed, 5 bytes


def hex_size(dim: int) -> int:
    """Number of neurons of a hexagonal SOM of odd side ``dim`` (PINK ``HexagonalLayout``)."""
    r = (dim - 1) // 2
    return dim * dim - r * (r + 1)


def _n_cells(layout: int, dims: tuple[int, ...]) -> int:
    return hex_size(dims[0]) if layout == 1 else int(np.prod(dims))


def format_comment(comment: str | None) -> bytes:
    """Comment block: each line prefixed ``# ``, then ``# END OF HEADER``; empty if None."""
    if comment is None:
        return b""
    out = []
    for line in str(comment).splitlines() or [""]:
        if line.strip() == END_OF_HEADER.decode():
            continue
        out.append(line if line.startswith("#") else f"# {line}")
    return ("\n".join(out) + "\n").encode("utf-8") + END_OF_HEADER + b"\n"


def read_comment(fh) -> str:
    """Skip PINK's comment block at the current position (PINK ``get_file_header``).

    Returns the comment lines (without ``#`` prefixes and end marker); the file is left at
    the first binary byte.
    """
    lines = []
    pos = fh.tell()
    while True:
        line = fh.readline()
        if not line or not line.startswith(b"#"):
            fh.seek(pos)
            break
        pos = fh.tell()
        text = line.rstrip(b"\r\n")
        if text == END_OF_HEADER:
            break
        lines.append(text[1:].lstrip(b" ").decode("utf-8", "replace"))
    return "\n".join(lines)


def _ints(fh, n: int) -> tuple[int, ...]:
    b = fh.read(4 * n)
    if len(b) != 4 * n:
        raise ValueError("truncated PINK header")
    return struct.unpack(f"<{n}i", b)


def _pack(*vals: int) -> bytes:
    return struct.pack(f"<{len(vals)}i", *(int(v) for v in vals))


def _check(fh, ftype: str) -> None:
    ver, typ = _ints(fh, 2)
    if ver != VERSION:
        raise ValueError(f"PINK file version {ver} != 2")
    if typ != FILE_TYPES[ftype]:
        raise ValueError(f"PINK file type {typ}, expected {FILE_TYPES[ftype]} ({ftype})")


def _write(path, comment: str | None, header: tuple[int, ...], *blocks: bytes) -> None:
    """One PINK v2 file: the comment block, ``VERSION`` + ``header`` ints, the data."""
    with open(path, "wb") as fh:
        fh.write(format_comment(comment))
        fh.write(_pack(VERSION, *header))
        for block in blocks:
            fh.write(block)


def _read_header(fh, ftype: str, n_ints: int) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """Comment, the ``n_ints`` header ints after the file type (the last one, the rank,
    dropped) and the ``rank`` dimensions that follow."""
    comment = read_comment(fh)
    _check(fh, ftype)
    head = _ints(fh, n_ints)
    return comment, head[:-1], _ints(fh, head[-1])


def _sniff_hex(fh, layout: int, dims: tuple, bytes_per_cell: int) -> int:
    """PINK 2.x stores layout 0 for hexagonal SOMs: recognise them by the data size."""
    if layout != 0 or len(dims) != 2 or dims[0] != dims[1] or dims[0] % 2 == 0:
        return layout
    pos = fh.tell()
    fh.seek(0, 2)
    remaining = fh.tell() - pos
    fh.seek(pos)
    if remaining == hex_size(dims[0]) * bytes_per_cell and dims[0] > 1:
        return 1
    return layout


def _dtype(code: int) -> np.dtype:
    table = ["<f4", "<f8", "i1", "<i2", "<i4", "<i8", "u1", "<u2", "<u4", "<u8"]
    if not 0 <= code < len(table):
        raise ValueError(f"unknown PINK data type {code}")
    return np.dtype(table[code])


@dataclass
class PinkFile:
    """Parsed PINK file: ``data`` plus header fields (``dims`` are the per-entry or SOM dims)."""

    data: np.ndarray
    comment: str
    layout: int
    dims: tuple
    neuron_dims: tuple | None = None


def write_images(path, images, comment: str | None = None, layout: int = 0) -> None:
    """Write a PINK image file.

    Parameters
    ----------
    path : path-like
    images : array_like, (N, H, W) or (N, C, H, W)
        Stored as float32; rank 2 for one channel, rank 3 otherwise.
    comment : str, optional
        Comment block (written before the binary header).
    layout : int
        Data layout code (0 cartesian).
    """
    a = np.asarray(images, dtype="<f4")
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim not in (2, 3, 4):
        raise ValueError("images must be (N, W), (N, H, W) or (N, C, H, W)")
    dims = a.shape[1:]
    _write(path, comment, (0, 0, a.shape[0], layout, len(dims), *dims),
           np.ascontiguousarray(a).tobytes())


def read_images(path) -> PinkFile:
    """Read a PINK image file; ``data`` has shape (N, *dims), float32."""
    with open(path, "rb") as fh:
        comment, (dtype, n, layout), dims = _read_header(fh, "image", 4)
        data = np.fromfile(fh, dtype=_dtype(dtype), count=n * _n_cells(layout, dims))
    return PinkFile(data.reshape(n, *dims).astype(np.float32), comment, layout, dims)


def write_som(
    path, weights, som_dims: tuple[int, int], layout: int = 0, comment: str | None = None
) -> None:
    """Write a PINK SOM file.

    Parameters
    ----------
    weights : array_like, (N, C, D, D) or (N, D, D)
        Neurons in storage order (N = rows*cols, or :func:`hex_size` for hexagonal).
    som_dims : (int, int)
        SOM dimensions as stored (rows, cols); hexagonal: (d, d).
    layout : int
        0 cartesian, 1 hexagonal.
    """
    w = np.asarray(weights, dtype="<f4")
    if w.ndim == 4 and w.shape[1] == 1:
        w = w[:, 0]
    if w.shape[0] != _n_cells(layout, tuple(som_dims)):
        raise ValueError("number of neurons does not match som_dims/layout")
    ndims = w.shape[1:]
    _write(path, comment, (1, 0, layout, len(som_dims), *som_dims),
           _pack(0, len(ndims), *ndims), np.ascontiguousarray(w).tobytes())


def read_som(path) -> PinkFile:
    """Read a PINK SOM file; ``data`` has shape (N, *neuron_dims), float32."""
    with open(path, "rb") as fh:
        comment, (dtype, layout), dims = _read_header(fh, "som", 3)
        _, nrank = _ints(fh, 2)
        ndims = _ints(fh, nrank)
        per = int(np.prod(ndims)) * _dtype(dtype).itemsize
        layout = _sniff_hex(fh, layout, dims, per)
        n = _n_cells(layout, dims)
        data = np.fromfile(fh, dtype=_dtype(dtype), count=n * int(np.prod(ndims)))
    if data.size != n * int(np.prod(ndims)):
        raise ValueError("truncated SOM data")
    return PinkFile(data.reshape(-1, *ndims).astype(np.float32), comment, layout, dims, ndims)


def write_mapping(
    path, distances, som_dims: tuple[int, int], layout: int = 0, comment: str | None = None
) -> None:
    """Write a PINK mapping file: Euclidean distance of every entry to every neuron.

    Parameters
    ----------
    distances : array_like, (n, N) float32
        ``sqrt`` of the summed squared pixel differences (PINK ``Mapper``).
    """
    d = np.asarray(distances, dtype="<f4")
    _write(path, comment, (2, 0, d.shape[0], layout, len(som_dims), *som_dims),
           np.ascontiguousarray(d).tobytes())


def read_mapping(path) -> PinkFile:
    """Read a PINK mapping file; ``data`` has shape (n, N) float32."""
    with open(path, "rb") as fh:
        comment, (dtype, n, layout), dims = _read_header(fh, "mapping", 4)
        layout = _sniff_hex(fh, layout, dims, n * _dtype(dtype).itemsize)
        nn = _n_cells(layout, dims)
        data = np.fromfile(fh, dtype=_dtype(dtype), count=n * nn)
    return PinkFile(data.reshape(n, nn).astype(np.float32), comment, layout, dims)


def write_transforms(
    path,
    flips,
    angles_rad,
    som_dims: tuple[int, int],
    layout: int = 0,
    comment: str | None = None,
) -> None:
    """Write a PINK best-rotation-and-flip file (``--store-rot-flip``).

    Parameters
    ----------
    flips : array_like, (n, N) bool/int
        Whether the best transform of entry i for neuron j is mirrored.
    angles_rad : array_like, (n, N) float32
        Its rotation angle [rad] (``(k % numrot) * 2 pi / numrot``).
    """
    f = np.asarray(flips)
    rec = np.empty(f.shape, dtype=TRANSFORM_DTYPE)
    rec["flip"] = f.astype(np.int8)
    rec["angle"] = np.asarray(angles_rad, dtype=np.float32)
    _write(path, comment, (3, f.shape[0], layout, len(som_dims), *som_dims), rec.tobytes())


def read_transforms(path) -> PinkFile:
    """Read a PINK transform file; ``data`` is a (n, N) record array (``flip``, ``angle``)."""
    with open(path, "rb") as fh:
        comment, (n, layout), dims = _read_header(fh, "transform", 3)
        layout = _sniff_hex(fh, layout, dims, n * TRANSFORM_DTYPE.itemsize)
        nn = _n_cells(layout, dims)
        data = np.fromfile(fh, dtype=TRANSFORM_DTYPE, count=n * nn)
    return PinkFile(data.reshape(n, nn), comment, layout, dims)


def som_layout_code(som) -> int:
    """PINK layout code of a :class:`~catclean.som.core.SOM` (0 cartesian, 1 hexagonal)."""
    return 1 if som.settings.layout == "hexagonal" else 0


SETTINGS_TAG = "catclean-som:"


def save_som(som, path, comment: str | None = None) -> None:
    """Write a trained SOM as a PINK SOM file (dims stored as (rows, cols)).

    The comment block carries ``catclean-som: {json}`` with the settings and image side,
    so :func:`load_som` restores the :class:`~catclean.som.core.SOM`; PINK ignores it (and
    copies it into SOMs it trains from this file with ``--init``).
    """
    meta = json.dumps({"image_dim": som.image_dim, "settings": som.settings.to_dict()})
    text = f"{SETTINGS_TAG} {meta}" + (f"\n{comment}" if comment else "")
    write_som(path, som.weights, som.shape, som_layout_code(som), text)


def load_som(path, settings=None, image_dim: int | None = None):
    """Read a PINK SOM file into a :class:`~catclean.som.core.SOM`.

    Parameters
    ----------
    path : path-like
    settings : SOMSettings or dict, optional
        Needed for files without a ``catclean-som:`` comment (e.g. written by PINK).
    image_dim : int, optional
        Side of the images [pixels]; default from the comment, else ``int((D - 1) /
        sqrt(2))`` inverted from PINK's default neuron side (pass it explicitly when unsure).
    """
    from .core import SOM, SOMSettings

    w, pf = load_som_weights(path)
    meta = {}
    for line in pf.comment.splitlines():
        if line.startswith(SETTINGS_TAG):
            meta = json.loads(line[len(SETTINGS_TAG) :])
    st = settings if settings is not None else meta.get("settings")
    if st is None:
        # a file PINK itself wrote: its lattice, and the paper preset for the rest
        rows, cols = (pf.dims + (1,))[:2]
        st = SOMSettings.from_preset("paper", rows=rows, cols=cols,
                                     layout="hexagonal" if pf.layout else "cartesian")
    st = st if isinstance(st, SOMSettings) else SOMSettings(**st)
    dim = image_dim or meta.get("image_dim") or int((w.shape[-1] - 1) / np.sqrt(2.0))
    return SOM(weights=w, settings=st, image_dim=int(dim))


def save_mapping(som, result, map_path, transform_path=None, comment=None) -> None:
    """Write PINK mapping (and optionally transform) files for a :class:`MapResult`.

    Unmapped entries (NaN rows) are written as distance NaN, flip 0, angle NaN.
    """
    write_mapping(map_path, result.distances, som.shape, som_layout_code(som), comment)
    if transform_path is not None:
        k = result.transforms.astype(np.int64)
        step = np.float32(2.0 * np.pi) / np.float32(result.numrot)
        ang = np.where(k >= 0, (k % result.numrot).astype(np.float32) * step, np.nan)
        flp = np.where(k >= 0, k // result.numrot, 0)
        write_transforms(transform_path, flp, ang, som.shape, som_layout_code(som), comment)


def load_som_weights(path: str | Path) -> tuple[np.ndarray, PinkFile]:
    """Weights of a PINK SOM file as (N, C, D, D) float32, plus the parsed file."""
    pf = read_som(path)
    w = pf.data
    if w.ndim == 3:
        w = w[:, None]
    return w, pf
