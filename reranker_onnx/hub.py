"""The Hugging Face hub, through ``huggingface_hub`` (imported here only, never by ``import reranker_onnx``).

Everything the client honours applies: ``HF_ENDPOINT`` (a mirror), ``HF_TOKEN``, ``HF_HOME``/``HF_HUB_CACHE``
(files land in the usual cache, so a second pull or another tool reuses them) and ``HF_HUB_OFFLINE``. Offline,
nothing opens a socket: files come from the cache or not at all. Every file is checked against the hub's
own hash (the LFS sha256, or the git blob id of a small file); a file that fails is removed from the cache,
so the next pull fetches it again instead of reusing the bad copy.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import DownloadError
from .manifest import file_entry

log = logging.getLogger(__name__)
ATTEMPTS = 3  # a connection dropped mid-file is resumed (ranged GET) up to this many times in all
NETWORK_MODULES = ("requests", "urllib3", "httpx", "httpcore", "ssl", "socket", "http")


@dataclass(frozen=True)
class RemoteFile:
    size: int | None
    sha256: str | None  # LFS files: the sha256 of the content
    blob_id: str | None  # git blob id (sha1 of "blob SIZE\0" + content), for files kept in git


def _network_error(exc: BaseException) -> bool:
    """A transport failure (not an HTTP answer, which the client already retried where it makes sense)."""
    from huggingface_hub import errors

    if isinstance(exc, (errors.HfHubHTTPError, errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled)):
        return False
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in NETWORK_MODULES


@contextmanager
def _errors(what: str) -> Iterator[None]:
    """Turn the client's exceptions into one-line DownloadErrors that say what to do."""
    from huggingface_hub import errors

    try:
        yield
    except errors.OfflineModeIsEnabled:
        raise DownloadError(f"{what}: offline mode (HF_HUB_OFFLINE=1) and not in the Hugging Face cache") from None
    except errors.RepositoryNotFoundError:
        raise DownloadError(f"{what}: the repository does not exist on the hub (or is private: set HF_TOKEN)") from None
    except errors.RevisionNotFoundError:
        raise DownloadError(f"{what}: the hub has no such revision; check the pin in models.lock") from None
    except errors.EntryNotFoundError:
        raise DownloadError(f"{what}: the hub has no such file at this revision (404)") from None
    except errors.LocalEntryNotFoundError:
        raise DownloadError(
            f"{what}: not in the Hugging Face cache and the hub cannot be reached; check the network "
            "(or HF_ENDPOINT) and run pull again"
        ) from None
    except errors.HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        raise DownloadError(f"{what}: the hub answered HTTP {status}; run pull again later") from None
    except Exception as exc:
        if not _network_error(exc):
            raise
        raise DownloadError(
            f"{what}: download failed ({type(exc).__name__}: {str(exc)[:160]}); check the network and run pull "
            "again (finished files are kept in the Hugging Face cache)"
        ) from None


def resolve(repo: str, revision: str) -> str:
    """The full commit that ``revision`` (a branch) points to now."""
    from huggingface_hub import HfApi

    with _errors(f"{repo}@{revision}"):
        sha = HfApi().model_info(repo, revision=revision).sha
    if not sha:
        raise DownloadError(f"{repo}@{revision}: the hub returned no commit")
    return sha


def listing(repo: str, revision: str) -> dict[str, RemoteFile]:
    """Every file of ``repo`` at ``revision`` with its size and hashes (one request)."""
    from huggingface_hub import HfApi

    with _errors(f"{repo}@{revision[:12]}"):
        info = HfApi().model_info(repo, revision=revision, files_metadata=True)
    files = {}
    for sibling in info.siblings or []:
        lfs = sibling.lfs
        sha256 = (lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)) if lfs else None
        files[sibling.rfilename] = RemoteFile(sibling.size, sha256, getattr(sibling, "blob_id", None))
    return files


def cached_listing(repo: str, revision: str) -> dict[str, RemoteFile]:
    """Offline: the files of ``repo``@``revision`` in the Hugging Face cache (hashes unknown)."""
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "snapshots" / revision
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): RemoteFile(None, None, None) for p in folder.rglob("*") if p.is_file()}


@contextmanager
def _progress(show: bool) -> Iterator[None]:
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    if not show:
        disable_progress_bars()
    try:
        yield
    finally:
        if not show and not was_disabled:
            enable_progress_bars()


def _git_blob_id(path: Path) -> str:
    """The id git gives a file's content: sha1 of ``blob SIZE\0`` and the bytes (what the hub reports)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _forget(path: Path) -> None:
    """Remove a bad file from the cache: the snapshot link and the blob it points to."""
    target = path.resolve()
    for p in {path, target}:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def download(repo: str, revision: str, filename: str, remote: RemoteFile | None, pinned: str | None,
             offline: bool, progress: bool | None = None) -> tuple[Path, str]:
    """Fetch one file into the Hugging Face cache (or find it there) and check it; return (path, sha256).

    Checked against the hub's hash when ``remote`` is known (online) — else, offline, against the cache's
    content address (LFS blobs are named by their sha256) — and against ``pinned`` (models.lock) if given.
    """
    from huggingface_hub import hf_hub_download

    show = sys.stderr.isatty() if progress is None else progress
    what = f"{repo}@{revision[:12]}/{filename}"
    with _errors(what), _progress(show):
        for attempt in range(1, ATTEMPTS + 1):
            try:
                path = Path(hf_hub_download(repo, filename, revision=revision, local_files_only=offline))
                break
            except Exception as exc:  # a dropped connection: the client resumes from its .incomplete file
                if offline or attempt == ATTEMPTS or not _network_error(exc):
                    raise
                log.warning("%s: %s, resuming (attempt %d of %d)", what, type(exc).__name__, attempt + 1, ATTEMPTS)
    sha256 = file_entry(path).sha256
    problems = []
    if remote is not None and remote.sha256 and sha256 != remote.sha256:
        problems.append(f"sha256 {sha256[:12]}… is not the hub's LFS sha256 {remote.sha256[:12]}…")
    elif remote is not None and not remote.sha256 and remote.blob_id and _git_blob_id(path) != remote.blob_id:
        problems.append(f"its git blob id is not the hub's {remote.blob_id[:12]}…")
    elif remote is None:  # offline: the blob's name in the cache is its hash
        blob = path.resolve().name
        if len(blob) == 64 and sha256 != blob or len(blob) == 40 and _git_blob_id(path) != blob:
            problems.append("it does not match its name in the Hugging Face cache")
    if pinned and sha256 != pinned:
        problems.append(f"sha256 {sha256[:12]}… is not models.lock's pin {pinned[:12]}…")
    if problems:
        _forget(path)
        raise DownloadError(
            f"{what}: {'; '.join(problems)} (corrupted or replaced); removed it from the cache and installed "
            "nothing: run pull again"
        )
    log.debug("verified %s (%s)", what, sha256)
    return path, sha256


def environment_note() -> dict[str, str]:
    """Where the files came from, for the manifest (never the token)."""
    from huggingface_hub import __version__, constants

    return {"endpoint": str(constants.ENDPOINT), "cache": str(constants.HF_HUB_CACHE),
            "huggingface_hub": __version__}
