"""A Hugging Face hub stand-in on 127.0.0.1, for tests and make targets (no model hub is reachable here).

It answers the routes ``huggingface_hub`` (0.2x-0.36) uses for ``snapshot_download``,
``hf_hub_download``, ``HfApi.model_info`` and ``list_repo_files``, with the headers the client checks:

* ``GET /api/models/{repo}[/revision/{rev}]``: ``sha`` and ``siblings`` (with sizes and LFS info
  when ``?blobs=true``);
* ``GET /api/models/{repo}/tree/{rev}[/{path}]``: the file listing (one page);
* ``HEAD|GET /{repo}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` (git blob sha1, or the
  sha256 for LFS files), ``X-Linked-Etag`` and ``X-Linked-Size`` for LFS files, ``Content-Length``,
  ``Accept-Ranges``; a ``Range: bytes=N-[M]`` GET answers 206 (how the client resumes).

Unknown repo, revision or file: 401/404 with ``X-Error-Code`` ``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``, which the client turns into its typed errors. Every request lands in
``HubServer.requests`` as ``(method, path)``. ``HubServer.faults`` breaks file downloads on purpose:
``drop`` (close the connection after N body bytes), ``corrupt`` (same headers, wrong bytes),
``trickle`` (slow chunks), ``status`` (an HTTP error such as 503).

    with HubServer() as hub:
        hub.add_repo("org/name", {"config.json": b"{}", "model.safetensors": Path(...)}, revision=SHA)
        env = hub.environ(tmp / "hf-home")   # HF_ENDPOINT and a private cache, for a subprocess
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Union
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".onnx", ".onnx_data", ".model", ".msgpack", ".h5", ".pt", ".ot")
LFS_MIN_SIZE = 10 * 1024 * 1024  # the hub refuses plain git files above 10 MB
CHUNK = 1 << 20
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

Content = Union[bytes, Path]


@dataclass(frozen=True)
class Blob:
    """One file of a revision: bytes in memory or a file on disk (served in chunks, never loaded whole)."""

    content: Content
    size: int
    sha256: str
    git_sha1: str

    @classmethod
    def of(cls, content: Content) -> "Blob":
        sha256, git = hashlib.sha256(), None
        if isinstance(content, bytes):
            size = len(content)
            sha256.update(content)
            git = hashlib.sha1(b"blob %d\0" % size + content).hexdigest()
        else:
            content = Path(content)
            size = content.stat().st_size
            git_hash = hashlib.sha1(b"blob %d\0" % size)
            with open(content, "rb") as f:
                for chunk in iter(lambda: f.read(CHUNK), b""):
                    sha256.update(chunk)
                    git_hash.update(chunk)
            git = git_hash.hexdigest()
        return cls(content, size, sha256.hexdigest(), git)

    def lfs(self, path: str) -> bool:
        return path.endswith(LFS_SUFFIXES) or self.size > LFS_MIN_SIZE

    def read(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive), in chunks."""
        if isinstance(self.content, bytes):
            for at in range(start, end, CHUNK):
                yield self.content[at:min(end, at + CHUNK)]
            return
        with open(self.content, "rb") as f:
            f.seek(start)
            left = end - start
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk


@dataclass
class Repo:
    revisions: dict[str, dict[str, Blob]] = field(default_factory=dict)  # full commit -> path -> blob
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> full commit

    def commit(self, revision: str) -> str | None:
        if revision in self.revisions:
            return revision
        return self.refs.get(revision)


@dataclass
class Fault:
    """Break downloads of files matching ``match`` (a glob over the path in the repo).

    kind: ``drop`` (close after ``after`` body bytes), ``corrupt`` (flip the byte at offset ``after``),
    ``trickle`` (``chunk`` bytes every ``delay`` seconds), ``status`` (answer ``status`` instead).
    ``times``: how many requests it hits (None: every one); ``hits`` counts them.
    """

    kind: str
    match: str = "*"
    after: int = 0
    chunk: int = 4096
    delay: float = 0.05
    status: int = 503
    times: int | None = None
    hits: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("drop", "corrupt", "trickle", "status"):
            raise ValueError(f"unknown fault kind {self.kind!r}")


class _Handler(BaseHTTPRequestHandler):
    server: "HubServer"
    # HTTP/1.0: one request per connection, so a stopped server really is unreachable (no pooled
    # keep-alive connection lives on), and a dropped download is a connection closed early.

    def log_message(self, *args):  # the handler logs nothing; the server keeps its own request log
        pass

    def do_GET(self):
        self._answer(body=True)

    def do_HEAD(self):
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        self.server.record(self.command, self.path, dict(self.headers))
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        if path.startswith("/api/models/"):
            self._api(path.removeprefix("/api/models/"), query, body)
        else:
            self._resolve(path.lstrip("/"), body)

    # ------------------------------------------------------------------ api

    def _api(self, rest: str, query: dict, body: bool) -> None:
        match = re.match(r"^([^/]+/[^/]+)(?:/(revision|tree)/([^/]+)(?:/(.*))?)?$", rest)
        if not match:
            return self._error(404, None, "Not found", body)
        repo_id, route, revision, sub = match.groups()
        repo, commit = self._known(repo_id, unquote(revision or "main"), body)
        if commit is None:
            return None
        files = repo.revisions[commit]
        if route == "tree":
            prefix = (sub or "").strip("/")
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            entries = self._tree(files, prefix, recursive)
            return self._json(200, entries, body, commit)
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for name, blob in sorted(files.items()):
            sibling: dict = {"rfilename": name}
            if blobs:
                sibling.update(size=blob.size, blobId=blob.git_sha1)
                if blob.lfs(name):
                    sibling["lfs"] = {"sha256": blob.sha256, "size": blob.size, "pointerSize": 134}
            siblings.append(sibling)
        info = {"_id": repo_id, "id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                "gated": False, "disabled": False, "tags": [], "siblings": siblings}
        self._json(200, info, body, commit)

    @staticmethod
    def _tree(files: dict[str, Blob], prefix: str, recursive: bool) -> list[dict]:
        entries, folders = [], set()
        for name, blob in sorted(files.items()):
            if prefix and not name.startswith(prefix + "/"):
                continue
            rest = name[len(prefix) + 1:] if prefix else name
            if "/" in rest and not recursive:
                folders.add((prefix + "/" if prefix else "") + rest.split("/", 1)[0])
                continue
            entry: dict = {"type": "file", "oid": blob.git_sha1, "size": blob.size, "path": name}
            if blob.lfs(name):
                entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": 134}
            entries.append(entry)
        if recursive:
            for name in files:
                parts = name.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    folder = "/".join(parts[:i])
                    if not prefix or folder.startswith(prefix + "/"):
                        folders.add(folder)
        entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in sorted(folders)]
        return entries

    # ------------------------------------------------------------------ files

    def _resolve(self, rest: str, body: bool) -> None:
        parts = rest.split("/", 4)  # org, name, "resolve", revision, file (which may hold a "/")
        if len(parts) != 5 or parts[2] != "resolve":
            return self._error(404, None, "Not found", body)
        repo_id, revision, name = "/".join(parts[:2]), parts[3], parts[4]
        repo, commit = self._known(repo_id, revision, body)
        if commit is None:
            return None
        blob = repo.revisions[commit].get(name)
        if blob is None:
            return self._error(404, "EntryNotFound", "Entry not found", body, commit=commit)
        fault = self.server.fault_for(name) if body else None
        if fault is not None and fault.kind == "status":
            return self._error(fault.status, None, "Service unavailable (stand-in fault)", body)
        headers = {"Content-Type": "application/octet-stream", "X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if blob.lfs(name):
            headers.update({"ETag": f'"{blob.sha256}"', "X-Linked-Etag": f'"{blob.sha256}"',
                            "X-Linked-Size": str(blob.size)})
        else:
            headers["ETag"] = f'"{blob.git_sha1}"'
        start, end, status = 0, blob.size, 200
        ranged = re.match(r"^bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
        if ranged:
            start = int(ranged.group(1))
            end = min(blob.size, int(ranged.group(2)) + 1) if ranged.group(2) else blob.size
            if start >= blob.size:
                headers["Content-Range"] = f"bytes */{blob.size}"
                return self._send(416, headers, b"", body)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if body:
            self._stream(blob, start, end, fault)

    def _stream(self, blob: Blob, start: int, end: int, fault: Fault | None) -> None:
        sent = 0
        for chunk in blob.read(start, end):
            if fault is not None and fault.kind == "corrupt" and sent <= fault.after - start < sent + len(chunk):
                at = fault.after - start - sent
                chunk = chunk[:at] + bytes([chunk[at] ^ 0xFF]) + chunk[at + 1:]
            if fault is not None and fault.kind == "drop" and sent + len(chunk) > fault.after:
                self.wfile.write(chunk[: max(0, fault.after - sent)])
                self.wfile.flush()
                self.close_connection = True
                return
            if fault is not None and fault.kind == "trickle":
                for at in range(0, len(chunk), fault.chunk):
                    self.wfile.write(chunk[at:at + fault.chunk])
                    self.wfile.flush()
                    threading.Event().wait(fault.delay)  # not time.sleep, which tests may stub
            else:
                self.wfile.write(chunk)
            sent += len(chunk)

    # ------------------------------------------------------------------ helpers

    def _known(self, repo_id: str, revision: str, body: bool) -> tuple[Repo | None, str | None]:
        repo = self.server.repos.get(repo_id)
        if repo is None:  # the real hub answers 401 to anonymous requests for a missing repo
            self._error(self.server.missing_repo_status, "RepoNotFound", "Repository not found", body)
            return None, None
        commit = repo.commit(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", body)
            return repo, None
        return repo, commit

    def _json(self, status: int, payload, body: bool, commit: str) -> None:
        headers = {"Content-Type": "application/json", "X-Repo-Commit": commit}
        self._send(status, headers, json.dumps(payload).encode(), body)

    def _error(self, status: int, code: str | None, message: str, body: bool, commit: str | None = None) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        if commit:
            headers["X-Repo-Commit"] = commit
        self._send(status, headers, json.dumps({"error": message}).encode(), body)

    def _send(self, status: int, headers: dict[str, str], data: bytes, body: bool) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)


class HubServer(ThreadingHTTPServer):
    """The stand-in: serves the repos added to it from a background thread until ``stop()``."""

    daemon_threads = True

    def __init__(self, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.request_headers: list[dict[str, str]] = []
        self.faults: list[Fault] = []
        self.missing_repo_status = 401
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._lock = threading.Lock()
        # a short poll keeps shutdown() quick (the default waits up to half a second)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def __enter__(self) -> "HubServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up mid-answer (a timeout, a test's fault) is normal here: stay quiet."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join()
            self.server_close()

    # ------------------------------------------------------------------ content

    def add_repo(self, repo_id: str, files: dict[str, Content], revision: str,
                 refs: tuple[str, ...] = ("main",)) -> dict[str, Blob]:
        """Publish ``files`` (path in repo -> bytes or a file) as commit ``revision`` of ``repo_id``;
        each of ``refs`` (branches) then points at it. Returns the blobs (sizes and hashes)."""
        if not re.fullmatch(r"[0-9a-f]{40}", revision):
            raise ValueError(f"a commit is 40 lowercase hex digits, not {revision!r}")
        blobs = {name: Blob.of(content) for name, content in files.items()}
        with self._lock:
            repo = self.repos.setdefault(repo_id, Repo())
            repo.revisions[revision] = blobs
            for ref in refs:
                repo.refs[ref] = revision
        return blobs

    def add_folder(self, repo_id: str, folder: Path, revision: str, refs: tuple[str, ...] = ("main",),
                   exclude: tuple[str, ...] = ()) -> dict[str, Blob]:
        """Publish every file under ``folder`` (served from disk), except those matching ``exclude`` globs."""
        folder = Path(folder)
        files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
        files = {n: p for n, p in files.items() if not any(fnmatch.fnmatch(n, g) for g in exclude)}
        return self.add_repo(repo_id, files, revision, refs)

    # ------------------------------------------------------------------ log and faults

    def record(self, method: str, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((method, path))
            self.request_headers.append(headers)

    def fault_for(self, name: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fnmatch.fnmatch(name, fault.match) and (fault.times is None or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None

    # ------------------------------------------------------------------ clients

    def environ(self, hf_home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a subprocess that should reach only this stand-in, with a private HF cache."""
        env = dict(os.environ if base is None else base)
        for var in PROXY_VARS + ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            env.pop(var, None)
        env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "HF_ENDPOINT": self.url,
                    "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(Path(hf_home) / "hub"),
                    "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_ENABLE_HF_TRANSFER": "0"})
        return env

    def patch_client(self, monkeypatch, hf_home: Path) -> None:
        """Point an already imported ``huggingface_hub`` (in this process) at the stand-in.

        huggingface_hub reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` once, at import, and caches one
        HTTP session per thread, so its constants are patched and its sessions reset; the environment
        variables are set too, for anything that reads them later.
        """
        from huggingface_hub import constants, file_download
        from huggingface_hub.utils import reset_sessions

        for var, value in self.environ(hf_home).items():
            if os.environ.get(var) != value:
                monkeypatch.setenv(var, value)
        for var in PROXY_VARS + ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            monkeypatch.delenv(var, raising=False)
        home = Path(hf_home)
        template = self.url + "/{repo_id}/resolve/{revision}/{filename}"
        for module, name, value in [
            (constants, "ENDPOINT", self.url),
            (constants, "HUGGINGFACE_CO_URL_TEMPLATE", template),
            (file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template),  # imported by name: patch both
            (constants, "HF_HOME", str(home)),
            (constants, "HF_HUB_CACHE", str(home / "hub")),
            (constants, "HF_TOKEN_PATH", str(home / "token")),
            (constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens")),
            (constants, "HF_HUB_OFFLINE", False),
            (constants, "HF_HUB_ENABLE_HF_TRANSFER", False),
        ]:
            monkeypatch.setattr(module, name, value)
        reset_sessions()  # a session cached by an earlier test may be offline or hold a dead connection

    @staticmethod
    def go_offline(monkeypatch) -> None:
        """Turn on ``HF_HUB_OFFLINE`` as an already imported huggingface_hub sees it."""
        from huggingface_hub import constants
        from huggingface_hub.utils import reset_sessions

        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        reset_sessions()  # offline mode lives in the session, which is made once per thread


def main() -> None:
    """``python -m testing.hub --repo ID=REVISION=FOLDER ...``: serve folders until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(description="Serve checkpoint folders as a Hugging Face hub stand-in.")
    parser.add_argument("--repo", action="append", default=[], metavar="ID=REVISION=FOLDER")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with HubServer(args.port) as hub:
        for spec in args.repo:
            repo_id, revision, folder = spec.split("=", 2)
            hub.add_folder(repo_id, Path(folder), revision)
        print(f"HF_ENDPOINT={hub.url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
