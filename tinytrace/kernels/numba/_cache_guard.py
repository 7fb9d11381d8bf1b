"""Keeps numba's on-disk cache of this package honest.

numba's ``cache=True`` checks only the source file of the cached function itself. Our
kernels inline helpers from ``_math.py`` and ``_common.py``, so after an edit to one of
those (and not to, say, ``lstm.py``) numba would load the OLD machine code of the LSTM
kernels without noticing. So on import we hash every source file of this package and, if
the hash differs from the one stored beside numba's cache files, delete those cache files
(``*.nbi``/``*.nbc`` in this package's ``__pycache__``) before anything is compiled.

(An installed, read-only copy keeps its cache elsewhere, under numba's own cache
directory; such a copy only changes on reinstall, which changes every file's timestamp, so
numba's own check suffices there.)
"""
import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAMP_NAME = "tinytrace_sources.sha256"


def sources_digest(folder=HERE):
    """SHA-256 over the names and contents of the package's ``.py`` files."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def clear_stale_cache(folder=HERE):
    """Delete numba's cache files in ``folder/__pycache__`` if any source changed since
    they were written. Returns the number of files removed (0 when nothing was stale or
    the folder is not writable)."""
    cache = folder / "__pycache__"
    stamp = cache / STAMP_NAME
    digest = sources_digest(folder)
    try:
        if stamp.exists() and stamp.read_text().strip() == digest:
            return 0
        removed = 0
        if cache.is_dir():
            for path in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
                path.unlink()
                removed += 1
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest + "\n")
        return removed
    except OSError:                     # read-only install: numba caches elsewhere
        return 0
