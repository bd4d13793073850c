"""Contact sheets of the real Legacy DR9 grz cutouts, for labelling them by eye.

Each sheet holds ``--cols`` x ``--rows`` cutouts, upscaled ``--scale`` times (nearest pixel), with
small crosshair ticks marking the centre (kept outside the central ``--gap`` pixels of the
upscaled image so they never cover the object) and the image's index printed above it. The index
is the position of the file in the sorted list of ``*_grz.png`` files, which is also the order of
``data/real_labels/legacy_dr9_eye_labels.csv``.

Re-create the sheets used for the labels with::

    python tools/label_sheets.py --src ../shared/real/legacy_dr9_grz_jpeg --out /tmp/sheets

and a single enlarged cutout with ``--single INDEX`` (written to ``OUT/single_INDEX.png``).
The images stay outside the repository.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

TICK_COLOUR = (0, 255, 0)
LABELS = ("galaxy", "shred", "star", "artefact", "unsure")
SPLIT_SEED = 20261202
FINETUNE_FRACTION = 0.6
LABEL_HEIGHT = 22


def list_cutouts(src: Path) -> list[Path]:
    """The cutouts in a fixed order (sorted by file name)."""
    return sorted(src.glob("*_grz.png"))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def marked_cutout(path: Path, scale: int, gap: int, tick: int) -> Image.Image:
    """One cutout upscaled ``scale`` times with four centre ticks outside the central ``gap`` px."""
    img = Image.open(path).convert("RGB")
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(img)
    cx, cy = img.width / 2, img.height / 2
    half = gap / 2
    width = max(1, scale // 2)
    draw.line([(cx - half - tick, cy), (cx - half, cy)], fill=TICK_COLOUR, width=width)
    draw.line([(cx + half, cy), (cx + half + tick, cy)], fill=TICK_COLOUR, width=width)
    draw.line([(cx, cy - half - tick), (cx, cy - half)], fill=TICK_COLOUR, width=width)
    draw.line([(cx, cy + half), (cx, cy + half + tick)], fill=TICK_COLOUR, width=width)
    return img


def make_sheet(
    paths: list[Path], first_index: int, cols: int, rows: int, scale: int, gap: int, tick: int
) -> Image.Image:
    """A sheet of up to ``cols * rows`` marked cutouts, each with its index above it."""
    tiles = [marked_cutout(p, scale, gap, tick) for p in paths]
    tw, th = tiles[0].size
    pad = 4
    sheet = Image.new(
        "RGB", (cols * (tw + pad) + pad, rows * (th + LABEL_HEIGHT + pad) + pad), (40, 40, 40)
    )
    draw = ImageDraw.Draw(sheet)
    font = _font(18)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        x = pad + c * (tw + pad)
        y = pad + r * (th + LABEL_HEIGHT + pad)
        draw.text((x + 2, y), str(first_index + k), fill=(255, 255, 0), font=font)
        sheet.paste(tile, (x, y + LABEL_HEIGHT))
    return sheet


def build_label_csv(raw: Path, paths: list[Path], out_csv: Path) -> dict[str, int]:
    """Labels ``index,label,note`` (from the sheets) -> the label CSV with a stratified split.

    Every image (by its index among all cutouts) gets a fixed random key from
    ``numpy.random.default_rng(SPLIT_SEED)``; per label, the images sorted by key go first
    ``round(FINETUNE_FRACTION * n)`` to ``finetune`` and the rest to ``validation``.
    """
    rows: dict[int, tuple[str, str]] = {}
    with raw.open() as fh:
        for line in fh:
            if not line.strip():
                continue
            index, label, note = (line.rstrip("\n").split(",", 2) + [""])[:3]
            if label not in LABELS:
                raise ValueError(f"bad label {label!r} for index {index}")
            if int(index) in rows:
                raise ValueError(f"index {index} labelled twice")
            rows[int(index)] = (label, note.strip())
    key = np.random.default_rng(SPLIT_SEED).random(len(paths))
    split: dict[int, str] = {}
    for label in LABELS:
        members = sorted((i for i, (lab, _) in rows.items() if lab == label), key=lambda i: key[i])
        n_ft = round(FINETUNE_FRACTION * len(members))
        for rank, i in enumerate(members):
            split[i] = "finetune" if rank < n_ft else "validation"
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["objID", "file", "label", "split", "note"])
        for i in sorted(rows):
            name = paths[i].name
            writer.writerow([name.split("_")[0], name, rows[i][0], split[i], rows[i][1]])
    counts: dict[str, int] = {}
    for i, (label, _) in rows.items():
        counts[f"{label}/{split[i]}"] = counts.get(f"{label}/{split[i]}", 0) + 1
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path("../shared/real/legacy_dr9_grz_jpeg"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/sheets"))
    parser.add_argument("--cols", type=int, default=5)
    parser.add_argument("--rows", type=int, default=5)
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--gap", type=int, default=20, help="tick-free centre, upscaled px")
    parser.add_argument("--tick", type=int, default=12, help="tick length, upscaled px")
    parser.add_argument("--single", type=int, default=None, help="write one enlarged cutout")
    parser.add_argument("--pick", default=None, help="comma-separated indices: one zoom sheet")
    parser.add_argument("--index-csv", action="store_true", help="print index,objID,file")
    parser.add_argument("--build", type=Path, default=None, help="raw index,label,note file")
    parser.add_argument(
        "--csv", type=Path, default=Path("data/real_labels/legacy_dr9_eye_labels.csv")
    )
    args = parser.parse_args(argv)

    paths = list_cutouts(args.src)
    if not paths:
        raise SystemExit(f"no *_grz.png cutouts under {args.src}")
    if args.build is not None:
        for key, n in sorted(build_label_csv(args.build, paths, args.csv).items()):
            print(f"{key}: {n}")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.index_csv:
        print("index,objID,file")
        for i, p in enumerate(paths):
            print(f"{i},{p.name.split('_')[0]},{p.name}")
        return
    if args.single is not None:
        img = marked_cutout(paths[args.single], 5, 50, 25)
        img.save(args.out / f"single_{args.single:03d}.png")
        return
    if args.pick is not None:
        idx = [int(i) for i in args.pick.split(",")]
        tiles = [marked_cutout(paths[i], 4, 40, 20) for i in idx]
        sheet = make_sheet(
            [paths[i] for i in idx], 0, min(3, len(idx)), -(-len(idx) // 3), 4, 40, 20
        )
        draw = ImageDraw.Draw(sheet)
        for k, i in enumerate(idx):  # relabel with the real indices
            r, c = divmod(k, 3)
            x, y = 4 + c * (tiles[0].width + 4), 4 + r * (tiles[0].height + LABEL_HEIGHT + 4)
            draw.rectangle([x, y, x + 60, y + LABEL_HEIGHT - 1], fill=(40, 40, 40))
            draw.text((x + 2, y), str(i), fill=(255, 255, 0), font=_font(18))
        sheet.save(args.out / "pick.png")
        return
    per_sheet = args.cols * args.rows
    for n, start in enumerate(range(0, len(paths), per_sheet)):
        chunk = paths[start : start + per_sheet]
        sheet = make_sheet(chunk, start, args.cols, args.rows, args.scale, args.gap, args.tick)
        sheet.save(args.out / f"sheet_{n:03d}.png")
    print(f"{len(paths)} cutouts -> {n + 1} sheets in {args.out}")


if __name__ == "__main__":
    main()
