"""Reading and writing Guild attrs and markers, atomically.

Guild stores one YAML value per file. We write JSON that is also valid YAML
(floats always carry a '.' or use YAML's spelling of inf/nan, since YAML 1.1
reads ``1e-05`` as a string) so our own reads take the fast JSON path, and
fall back to YAML for files Guild wrote.
"""

from __future__ import annotations

import itertools
import json
import math
import os

from .regular_file import read_small

_tmp_counter = itertools.count()


class AttrReadError(Exception):
    """An attr file exists but cannot be read or parsed."""


def encode(value) -> str:
    return _enc(value) + "\n"


def _enc(v) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _enc_float(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_enc(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_enc(x) for x in v) + "]"
    return json.dumps(str(v))


def _enc_float(v: float) -> str:
    if math.isnan(v):
        return ".nan"
    if math.isinf(v):
        return ".inf" if v > 0 else "-.inf"
    s = repr(v)
    if "e" in s and "." not in s:
        mant, exp = s.split("e")
        s = f"{mant}.0e{exp}"
    return s


_SCALARS = {"null": None, "true": True, "false": False}


def decode(text: str):
    t = text.strip()
    if t.isascii() and t.isdigit():  # most attrs are timestamps and statuses: skip the JSON parser
        return int(t)
    if t in _SCALARS:
        return _SCALARS[t]
    try:
        return json.loads(text)
    except RecursionError as e:  # absurdly nested
        raise AttrReadError("value nested too deeply") from e
    except ValueError:
        pass
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        value = yaml.load(text, Loader=loader)
    except yaml.YAMLError as e:
        raise AttrReadError(str(e).splitlines()[0]) from e
    except (ValueError, TypeError, RecursionError) as e:  # e.g. an impossible date
        raise AttrReadError(f"unreadable value: {type(e).__name__}") from e
    if _self_referencing(value):
        raise AttrReadError("a value that contains itself")
    return value


def _self_referencing(value, seen=None) -> bool:
    """YAML anchors can make a list or dict contain itself (``&a [*a]``),
    which would recurse forever wherever it is shown."""
    if not isinstance(value, (list, dict)):
        return False
    seen = set() if seen is None else seen
    if id(value) in seen:
        return True
    seen.add(id(value))
    items = value.values() if isinstance(value, dict) else value
    found = any(_self_referencing(v, seen) for v in items)
    seen.discard(id(value))
    return found


_MISSING = object()


def read_text(path: str) -> str:
    """A small file's text, with plain fds (a listing of 10,000 runs opens
    50,000 files: io.open's layers show). Regular files only, at most
    ``regular_file.MAX_SMALL`` bytes: an attr that is a FIFO or a link to
    ``/dev/zero`` is unreadable, never a hang. Raises OSError, UnicodeDecodeError."""
    return read_small(path).decode("utf-8")


def read(path: str, default=_MISSING):
    """Reads one attr file. Missing -> default (or KeyError); corrupt -> AttrReadError."""
    try:
        data = read_small(path)
    except FileNotFoundError:
        if default is _MISSING:
            raise KeyError(path) from None
        return default
    except OSError as e:
        raise read_error(os.path.basename(path), e) from e
    return parse(os.path.basename(path), data)


def read_error(name: str, e: OSError) -> AttrReadError:
    """What ``read`` raises for attr ``name`` that could not be read (``e``)."""
    return AttrReadError(f"{name}: {e.strerror or e}")


def parse(name: str, data: bytes):
    """The value of attr ``name`` whose file holds ``data`` (``read`` after
    the file was read: a listing that read it itself, its stamp with it)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AttrReadError(f"{name}: {e}") from e
    if not text.strip():
        raise AttrReadError(f"{name}: empty file")
    return decode(text)


def write_atomic(path: str, data: str | bytes) -> None:
    """Writes a whole file so that readers see either the old or the new one."""
    # A unique temp name in the same directory (tempfile costs an import of
    # random/hashlib on the supervisor's start-up path).
    dirname, basename = os.path.split(path)
    while True:
        tmp = os.path.join(dirname, f".{basename}.{os.getpid()}.{next(_tmp_counter)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_attr(attrs_dir: str, name: str, value) -> None:
    write_atomic(os.path.join(attrs_dir, name), encode(value))


def write_new(path: str, data: str | bytes) -> None:
    """Writes a file in a directory no reader can see yet (no temp file needed)."""
    with open(path, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def remove(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
