"""Fetch a checkpoint at a pinned revision with huggingface_hub: only the files an export needs.

It uses the normal Hugging Face cache and honours ``HF_HUB_OFFLINE``; ``HF_ENDPOINT`` points it at a
mirror (the tests use a stand-in server on 127.0.0.1). A lock entry without a revision is resolved
once, recorded and reported: an export never silently follows ``main``.
"""

from __future__ import annotations

import logging
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


def fetch_checkpoint(repo: str, revision: str, cache_dir: Path | None = None) -> Path:
    """Download (or reuse from the cache) ``repo`` at ``revision``; return the snapshot folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    if not REVISION.match(revision):
        raise ExportError(f"revision {revision!r} of {repo} is not a full 40-hex commit; pin one in models.lock")
    try:
        folder = snapshot_download(repo, revision=revision, allow_patterns=NEEDED, cache_dir=cache_dir)
    except RevisionNotFoundError:
        raise ExportError(f"revision {revision} does not exist in {repo}; fix it in models.lock") from None
    except RepositoryNotFoundError:
        raise ExportError(f"{repo} does not exist on the hub (or is private)") from None
    except LocalEntryNotFoundError:
        raise ExportError(
            f"{repo}@{revision[:12]} is not in the local Hugging Face cache and the hub is unreachable "
            "(or HF_HUB_OFFLINE=1); export from a local checkpoint folder instead"
        ) from None
    missing = _missing(Path(folder))
    if missing:
        raise ExportError(
            f"the snapshot of {repo}@{revision[:12]} lacks {' and '.join(missing)} (an interrupted download, "
            "served from the cache, or weights this stage does not fetch); fetch it again online or "
            "export from a local checkpoint folder instead"
        )
    return Path(folder)


def _missing(folder: Path) -> list[str]:
    """What an export cannot do without: a config and one full set of weights."""
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    if not any((folder / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")):
        missing.append("model.safetensors (or pytorch_model.bin)")
    return missing
