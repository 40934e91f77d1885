"""Fetch a checkpoint at a pinned revision with huggingface_hub: only the files an export needs.

It uses the normal Hugging Face cache and honours ``HF_HUB_OFFLINE``; ``HF_ENDPOINT`` points it at a
mirror (the tests use a stand-in server on 127.0.0.1). A lock entry without a revision is resolved
once, recorded and reported: an export never silently follows ``main``.

huggingface_hub checks sizes, not contents; so every fetched file is checked against the hash its
cache blob is named by (the LFS sha256, or the git blob sha1 of a small file), and against the sha256
``models.lock`` pins for it (``upstream_files``). A file that fails is removed from the cache, so the
next fetch downloads it again. Transport failures (hub down, slow, a connection dropped mid-file, full
disk) end in one ``ExportError`` line each; huggingface_hub keeps partial downloads and resumes them.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
from pathlib import Path

from .families import ExportError

log = logging.getLogger(__name__)

REVISION = re.compile(r"^[0-9a-f]{40}$")
NEEDED = [
    "config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt", "sentencepiece.bpe.model",
    "tokenizer.model", "config_sentence_transformers.json", "modules.json",
]


def resolve_revision(repo: str) -> str:
    """The current commit of ``repo``'s main branch (needs the hub); the caller records it."""
    import requests
    from huggingface_hub import HfApi
    from huggingface_hub.errors import OfflineModeIsEnabled, RepositoryNotFoundError, RevisionNotFoundError

    try:
        sha = HfApi().model_info(repo, revision="main").sha
    except OfflineModeIsEnabled:  # before ConnectionError, its base class
        raise ExportError(f"{repo} has no pinned revision and offline mode is on: pin one in models.lock") from None
    except RepositoryNotFoundError:
        raise ExportError(f"{repo} does not exist on the hub (or is private)") from None
    except RevisionNotFoundError:
        raise ExportError(f"{repo} has no main branch: pin a revision in models.lock") from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise ExportError(
            f"{repo} has no pinned revision and the hub is unreachable ({type(exc).__name__}): pin one in models.lock"
        ) from None
    if not sha or not REVISION.match(sha):
        raise ExportError(f"the hub returned no commit for {repo}")
    log.warning("%s had no pinned revision: resolved main to %s and recorded it", repo, sha)
    return sha


def fetch_checkpoint(repo: str, revision: str, cache_dir: Path | None = None,
                     pins: dict[str, str] | None = None) -> Path:
    """Download (or reuse from the cache) ``repo`` at ``revision``; return the snapshot folder.

    ``pins`` maps file names to the sha256 they must have (models.lock's ``upstream_files``).
    """
    import requests
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    if not REVISION.match(revision):
        raise ExportError(f"revision {revision!r} of {repo} is not a full 40-hex commit; pin one in models.lock")
    where = f"{repo}@{revision[:12]}"
    try:
        folder = snapshot_download(repo, revision=revision, allow_patterns=NEEDED, cache_dir=cache_dir)
    except RevisionNotFoundError:
        raise ExportError(f"revision {revision} does not exist in {repo}; fix it in models.lock") from None
    except RepositoryNotFoundError:
        raise ExportError(f"{repo} does not exist on the hub (or is private)") from None
    except LocalEntryNotFoundError:
        raise ExportError(
            f"{where} is not in the local Hugging Face cache and the hub is unreachable "
            "(or HF_HUB_OFFLINE=1); export from a local checkpoint folder instead"
        ) from None
    except (requests.Timeout, TimeoutError):
        raise ExportError(
            f"the hub stopped sending {where} (timed out); run the export again to resume the download, "
            "or raise HF_HUB_DOWNLOAD_TIMEOUT on a slow link"
        ) from None
    except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
        raise ExportError(
            f"the connection to the hub broke while downloading {where} ({type(exc).__name__}); "
            "run the export again to resume the download"
        ) from None
    except requests.HTTPError as exc:  # HfHubHTTPError is one
        status = exc.response.status_code if exc.response is not None else "?"
        raise ExportError(f"the hub answered HTTP {status} for {where}; try again later") from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ExportError(
                f"no space left on the device holding the Hugging Face cache while downloading {where}; "
                "free some space (or set HF_HUB_CACHE) and run the export again"
            ) from None
        raise
    folder = Path(folder)
    verify_snapshot(folder, where, pins or {})
    missing = _missing(folder)
    if missing:
        raise ExportError(
            f"the snapshot of {where} lacks {' and '.join(missing)} (an interrupted download, "
            "served from the cache, or weights this stage does not fetch); fetch it again online or "
            "export from a local checkpoint folder instead"
        )
    return folder


def _digests(path: Path) -> tuple[str, str]:
    """(sha256, git blob sha1) of a file, in one pass."""
    sha256, git = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            sha256.update(chunk)
            git.update(chunk)
    return sha256.hexdigest(), git.hexdigest()


def verify_snapshot(folder: Path, where: str, pins: dict[str, str]) -> None:
    """Check each file of a snapshot against its cache blob's name and ``pins``; remove a bad one."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        sha256, git = _digests(path)
        blob = Path(os.path.realpath(path))
        expected, source = None, ""
        if re.fullmatch(r"[0-9a-f]{64}", blob.name) and blob.name != sha256:
            expected, source = blob.name, "the hub's LFS sha256"
        elif re.fullmatch(r"[0-9a-f]{40}", blob.name) and blob.name != git:
            expected, source = blob.name, "the hub's git hash"
        elif name in pins and pins[name] != sha256:
            expected, source = pins[name], "the sha256 pinned in models.lock"
        if expected is None:
            continue
        for bad in {path, blob}:  # the next fetch downloads it again
            bad.unlink(missing_ok=True)
        raise ExportError(
            f"checksum mismatch: {name} of {where} has {(sha256 if len(expected) == 64 else git)[:12]}…, "
            f"expected {expected[:12]}… ({source}); removed it from the cache: run the export again, "
            "and if it persists, check the pin in models.lock"
        )


def _missing(folder: Path) -> list[str]:
    """What an export cannot do without: a config and one full set of weights."""
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    if not any((folder / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")):
        missing.append("model.safetensors (or pytorch_model.bin)")
    return missing
