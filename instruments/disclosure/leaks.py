"""``find_leaks``: search output files for secret strings (names, phones, coordinates).

Every file is searched twice: its raw bytes as text, and its decoded content (cells of
workbooks, values and labels of Stata/SPSS files, Parquet columns and metadata, the
members of zip containers such as ``.xlsx``), so a value stored as a number, compressed
or split across XML runs is still found.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pandas as pd

__all__ = ["coordinate_strings", "find_leaks"]

_PHONE = re.compile(r"^\+?[\d\s\-().]{7,}$")


def coordinate_strings(lat: float, lon: float, decimals: Sequence[int] = (4, 5, 6)) -> list[str]:
    """Ways a coordinate pair may be written: each number at several precisions, the
    pair as ODK writes it (``"lat lon"``), with a comma, and in degrees-minutes-seconds.

    Notes
    -----
    Four decimals are about 11 m: finer than any displacement worth the name, coarse
    enough to catch a point rounded for display. Short strings risk false alarms in
    large files; choose test coordinates with distinctive digits.
    """
    out: list[str] = []
    for d in decimals:
        a, b = f"{lat:.{d}f}", f"{lon:.{d}f}"
        out += [a, b, f"{a} {b}", f"{a},{b}", f"{a}, {b}"]
    out.append(_dms(lat, "NS") + " " + _dms(lon, "EW"))
    return list(dict.fromkeys(out))


def _dms(x: float, hemi: str) -> str:
    h = hemi[0] if x >= 0 else hemi[1]
    x = abs(x)
    d = int(x)
    m = int((x - d) * 60)
    s = (x - d - m / 60) * 3600
    return f"{d}°{m:02d}'{s:04.1f}\"{h}"


_PREFIX = 5
_SEPS = re.compile(r"(?<=\d)[ \-.()/]{1,2}(?=\d)")


def _needles(secrets: Iterable[str]) -> list[tuple[str, str, str]]:
    """(secret, kind, needle): phone-like secrets are matched on their digits."""
    out = []
    for s in dict.fromkeys(str(x) for x in secrets if str(x).strip()):
        if _PHONE.match(s) and sum(ch.isdigit() for ch in s) >= 7:
            out.append((s, "digits", "".join(ch for ch in s if ch.isdigit())))
        else:
            out.append((s, "text", s.lower()))
    return out


def _find_digits(text: str, needle: str) -> int:
    """First position of ``needle`` not inside a longer run of digits, or -1."""
    i = text.find(needle)
    while i >= 0:
        before = text[i - 1] if i > 0 else ""
        after = text[i + len(needle)] if i + len(needle) < len(text) else ""
        if not before.isdigit() and not after.isdigit():
            return i
        i = text.find(needle, i + 1)
    return -1


def _texts(path: Path) -> Iterator[tuple[str, str]]:
    """(where, text) pieces of a file, raw and decoded."""
    raw = path.read_bytes()
    try:
        yield "bytes", raw.decode("utf-8")
    except UnicodeDecodeError:
        yield "bytes", raw.decode("latin-1")
    suffix = path.suffix.lower()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                data = zf.read(name)
                text = data.decode("utf-8", errors="replace")
                yield f"member {name}", text
                # workbooks: cell values are in the sheets' and sharedStrings' XML
                if name.endswith(".xml"):  # a string split across runs <t>..</t>
                    yield f"member {name} (text)", re.sub(r"<[^>]+>", "", text)
    if suffix in (".dta", ".sav", ".zsav", ".por"):
        yield from _readstat(path, suffix)
    elif suffix in (".parquet", ".pq"):
        yield from _parquet(path)


def _frame_text(df: pd.DataFrame) -> str:
    parts = [" | ".join(map(str, df.columns))]
    for c in df.columns:
        col = df[c]
        if pd.api.types.is_float_dtype(col):
            vals = col.dropna().to_numpy(dtype=float)
            parts += [repr(float(v)) for v in vals] + [f"{v:.6f}" for v in vals]
        else:
            parts += col.dropna().astype(str).tolist()
    return "\n".join(parts)


def _readstat(path: Path, suffix: str) -> Iterator[tuple[str, str]]:
    import pyreadstat

    reader = {".dta": pyreadstat.read_dta, ".sav": pyreadstat.read_sav,
              ".zsav": pyreadstat.read_sav, ".por": pyreadstat.read_por}[suffix]
    df, meta = reader(str(path))
    yield "values", _frame_text(df)
    labels = [str(meta.file_label or ""), *map(str, meta.column_labels or [])]
    for vl in (meta.value_labels or {}).values():
        labels += [f"{k} {v}" for k, v in vl.items()]
    yield "labels", "\n".join(labels)


def _parquet(path: Path) -> Iterator[tuple[str, str]]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    yield "values", _frame_text(pf.read().to_pandas())
    meta = pf.schema_arrow.metadata or {}
    yield "metadata", "\n".join(f"{k!r} {v!r}" for k, v in meta.items())


def find_leaks(paths: str | Path | Iterable[str | Path], secrets: Iterable[str]) -> pd.DataFrame:
    """Search files (and folders, recursively) for any of the secret strings.

    Parameters
    ----------
    paths
        Files or folders: CSV, XLSX, DTA, SAV, Parquet, HTML, logs, JSON, markdown,
        zip... (any file is searched as text; the listed formats are also decoded).
    secrets
        Strings that must not appear: names (matched case-insensitively), phone
        numbers (matched on their digits, whatever the separators), coordinates (see
        :func:`coordinate_strings`).

    Returns
    -------
    DataFrame
        One row per (file, secret, where) found: ``path, secret, where, context``
        (a few characters around the first hit). Empty when nothing leaked.

    Notes
    -----
    Use it on everything a release writes (files, report, logs) before it leaves the
    secure environment; its findings contain the secrets, so keep them there too.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    buckets: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for secret, kind, needle in _needles(secrets):  # shared prefixes searched once
        buckets.setdefault((kind, needle[:_PREFIX]), []).append((secret, needle))
    rows = []
    for f in files:
        for where, text in _texts(f):
            hays = {"text": text.lower(), "digits": _SEPS.sub("", text)}  # 555-01 -> 55501
            for (kind, prefix), group in buckets.items():
                hay = hays[kind]
                if hay.find(prefix) < 0:
                    continue
                for secret, needle in group:
                    i = hay.find(needle) if kind == "text" else _find_digits(hay, needle)
                    if i >= 0:
                        rows.append({"path": str(f), "secret": secret, "where": where,
                                     "context": hay[max(0, i - 20):i + len(needle) + 20]})
    out = pd.DataFrame(rows, columns=["path", "secret", "where", "context"])
    return out.drop_duplicates(["path", "secret"]).reset_index(drop=True) if len(out) else out
