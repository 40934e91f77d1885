"""Real text from Debian packages: fetch a pinned .deb with apt, check its sha256, read files out of it.

The package registries are the one source of real text that every machine of this project reaches, and a
pinned version with its sha256 makes a task the same everywhere. A .deb is an ``ar`` archive holding a
``data.tar.*``; reading it in Python needs neither root nor dpkg.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Deb:
    package: str
    version: str
    sha256: str  # of the .deb file as apt downloads it
    licence: str  # as the package's copyright file states it

    @property
    def spec(self) -> str:
        return f"{self.package}={self.version}"


def cache_dir() -> Path:
    """``$RERANKER_DEB_CACHE`` or ``.cache/debs`` in the working directory."""
    return Path(os.environ.get("RERANKER_DEB_CACHE", ".cache/debs"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(deb: Deb, cache: Path | None = None) -> Path:
    """The .deb in the cache, downloaded with ``apt-get download`` on first use and checked every time."""
    cache = cache or cache_dir()
    target = cache / f"{deb.package}_{deb.version.replace(':', '%3a')}.deb"
    if not target.is_file():
        if shutil.which("apt-get") is None:
            raise RuntimeError(f"apt-get is needed to fetch {deb.spec}; or put the .deb at {target}")
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            done = subprocess.run(["apt-get", "download", deb.spec], cwd=tmp, capture_output=True, text=True)
            got = list(Path(tmp).glob("*.deb"))
            if done.returncode != 0 or len(got) != 1:
                why = (done.stderr.strip().splitlines() or ["no .deb written"])[-1]
                raise RuntimeError(f"cannot download {deb.spec}: {why} (run 'apt-get update' first?)")
            os.replace(got[0], target)
    actual = sha256_file(target)
    if actual != deb.sha256:
        raise RuntimeError(f"{target} has sha256 {actual}, expected {deb.sha256}: delete it and run again")
    return target


def _data_tar(path: Path) -> bytes:
    """The ``data.tar.*`` member of a .deb (an ar archive of 60-byte headers and even-padded members)."""
    blob = path.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise RuntimeError(f"{path} is not a .deb (no ar magic)")
    pos = 8
    while pos + 60 <= len(blob):
        name = blob[pos : pos + 16].decode().strip().rstrip("/")
        size = int(blob[pos + 48 : pos + 58].decode().strip())
        if name.startswith("data.tar"):
            return blob[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size & 1)
    raise RuntimeError(f"{path} has no data.tar member")


def members(path: Path, prefix: str) -> Iterator[tuple[str, bytes]]:
    """(path without the leading './', bytes) of every regular file under ``prefix``, in archive order."""
    with tarfile.open(fileobj=io.BytesIO(_data_tar(path)), mode="r:*") as tar:
        for info in tar:
            name = info.name.removeprefix("./")
            if info.isfile() and name.startswith(prefix):
                fh = tar.extractfile(info)
                if fh is not None:
                    yield name, fh.read()
