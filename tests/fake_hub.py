"""An in-process stand-in for the Hugging Face Hub that the real `huggingface_hub` client can push to and load from.

It speaks the part of the Hub's HTTP API that `create_repo`, `upload_folder` / `create_commit` (preupload, regular
files inline, LFS files through the batch API, an upload URL and a verify call), `model_info` / `repo_info`,
`list_repo_files` / `list_repo_tree`, `hf_hub_download` / `snapshot_download` and transformers' `push_to_hub` /
`from_pretrained` use. Repositories live in memory; every commit is a new revision and `main` is the latest one.

In a test, take the `fake_hub` fixture (import it into the test module: `from fake_hub import fake_hub_fixture  #
noqa: F401`): it points this process's client at the server and yields the `FakeHub`. A child process gets the
server through `hub.environ(hf_home)`.

Not spoken: Xet storage (the client must run with `HF_HUB_DISABLE_XET=1`, which the fixture and `environ` set),
branches other than `main`, pull requests, multipart LFS uploads, private or gated repositories.
"""

import base64
import datetime
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml
from huggingface_hub.repocard import REGEX_YAML_BLOCK

USER = "fake-user"
TOKEN = "hf_fake_write_token"
# Files the Hub stores through LFS: the default `.gitattributes` patterns that matter here, and anything large.
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".npy", ".npz", ".zip", ".tar.gz")
LFS_MIN_SIZE = 10 * 1024 * 1024
REPO_TYPE_OF_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX_OF_REPO_TYPE = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def git_blob_oid(content: bytes) -> str:
    """What `git hash-object` prints for `content`: the Hub's id of a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class StoredFile:
    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def lfs_pointer(self) -> bytes:
        """The small text file git stores in place of an LFS file."""
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.content)}\n"
        return pointer.encode()

    @property
    def etag(self) -> str:
        """The Hub's ETag (X-Linked-Etag for LFS files), which the client uses to name the cached blob."""
        return self.sha256 if self.lfs else git_blob_oid(self.content)

    @property
    def git_oid(self) -> str:
        return git_blob_oid(self.lfs_pointer if self.lfs else self.content)


@dataclass(frozen=True)
class Commit:
    oid: str
    message: str
    files: dict[str, StoredFile]
    date: str


@dataclass
class Repo:
    repo_id: str
    commits: list[Commit] = field(default_factory=list)

    def resolve(self, revision: str) -> Commit:
        """The commit `revision` names: `main` (the latest) or a commit id."""
        if revision == "main":
            return self.commits[-1]
        for commit in self.commits:
            if commit.oid == revision:
                return commit
        raise HubError(
            404,
            f"Revision {revision!r} not found in {self.repo_id} (the fake Hub has only 'main').",
            "RevisionNotFound",
        )


class HubError(Exception):
    """An error answer: HTTP status, message, and the `X-Error-Code` the client turns into a typed exception."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message = status, message
        self.headers = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {}), **(headers or {})}


@dataclass
class Request:
    method: str
    groups: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")


@dataclass
class Response:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def json_response(value, status: int = 200) -> Response:
    return Response(json.dumps(value).encode(), status)


def card_metadata(readme: bytes) -> dict:
    """The YAML block at the top of a README.md, as a dict (empty without one); `HubError` 400 if it is malformed."""
    match = REGEX_YAML_BLOCK.search(readme.decode("utf-8"))
    if match is None:
        return {}
    try:
        metadata = yaml.safe_load(match.group(2))
    except yaml.YAMLError as error:
        raise HubError(400, f"README.md metadata is not valid YAML: {error}") from error
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise HubError(400, "README.md metadata must be a YAML mapping.")
    for key in ("tags", "datasets"):
        value = metadata.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
            raise HubError(400, f"README.md metadata '{key}' must be a list of strings, got {value!r}.")
    return metadata


class FakeHub:
    """The server's state and its routes. Use as a context manager: it serves on 127.0.0.1 while open.

    `endpoint`: the base URL (`HF_ENDPOINT`); `token`: the token write calls must carry; `requests`: every
    (method, path) received, in order.
    """

    def __init__(self):
        self.token = TOKEN
        self.requests: list[tuple[str, str]] = []
        self._repos: dict[tuple[str, str], Repo] = {}
        self._lfs_objects: dict[str, bytes] = {}
        self._lock = threading.Lock()
        repo = r"(?P<repo_id>[\w.-]+/[\w.-]+)"
        api = r"/api/(?P<api_prefix>models|datasets|spaces)/" + repo
        url_prefix = r"/(?:(?P<url_prefix>datasets|spaces)/)?" + repo
        self._routes: list[tuple[str, re.Pattern, Callable[[Request], Response]]] = [
            ("POST", re.compile(r"/api/repos/create"), self._create_repo),
            ("POST", re.compile(r"/api/validate-yaml"), self._validate_yaml),
            ("POST", re.compile(api + r"/preupload/(?P<revision>[^/]+)"), self._preupload),
            ("POST", re.compile(api + r"/commit/(?P<revision>[^/]+)"), self._commit),
            ("GET", re.compile(api + r"(?:/revision/(?P<revision>[^/]+))?"), self._repo_info),
            ("GET", re.compile(api + r"/tree/(?P<revision>[^/]+)(?:/(?P<path>.+))?"), self._tree),
            ("POST", re.compile(url_prefix + r"\.git/info/lfs/objects/batch"), self._lfs_batch),
            ("PUT", re.compile(r"/fake-lfs-storage/(?P<oid>[0-9a-f]{64})"), self._lfs_upload),
            ("POST", re.compile(r"/fake-lfs-storage/verify"), self._lfs_verify),
            ("GET", re.compile(url_prefix + r"/resolve/(?P<revision>[^/]+)/(?P<path>.+)"), self._resolve),
            ("HEAD", re.compile(url_prefix + r"/resolve/(?P<revision>[^/]+)/(?P<path>.+)"), self._resolve),
        ]

    # ---- for tests

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """{path: content} of the repository at `revision`."""
        commit = self._repo(repo_type, repo_id).resolve(revision)
        return {path: stored.content for path, stored in commit.files.items()}

    def lfs_files(self, repo_id: str, repo_type: str = "model") -> set[str]:
        """Paths of the latest revision that are stored through LFS."""
        commit = self._repo(repo_type, repo_id).resolve("main")
        return {path for path, stored in commit.files.items() if stored.lfs}

    def commits(self, repo_id: str, repo_type: str = "model") -> list[str]:
        """Commit ids of the repository, oldest first (the first is the one `create_repo` makes)."""
        return [commit.oid for commit in self._repo(repo_type, repo_id).commits]

    def environ(self, hf_home: str | os.PathLike) -> dict[str, str]:
        """This process's environment, pointed at this server, with a fresh Hugging Face home, for a child process."""
        offline = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
        environ = {key: value for key, value in os.environ.items() if key not in offline}
        environ.update(
            HF_ENDPOINT=self.endpoint,
            HF_TOKEN=self.token,
            HF_HOME=str(hf_home),
            HF_HUB_DISABLE_XET="1",
            HF_HUB_DISABLE_TELEMETRY="1",
        )
        return environ

    def patch_client(self, monkeypatch: pytest.MonkeyPatch, cache_dir: str | os.PathLike) -> None:
        """Points this process's `huggingface_hub` and transformers at the server, downloading into `cache_dir`.

        The client reads `HF_ENDPOINT` once, at import, into constants and into the `HfApi` instances behind the
        module-level functions; transformers keeps its own `HfApi`, made on first use.
        """
        from huggingface_hub import constants, hf_api
        from transformers.utils import hub as transformers_hub

        monkeypatch.setattr(constants, "ENDPOINT", self.endpoint)
        url_template = self.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url_template)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hf_api.api, "endpoint", self.endpoint)
        monkeypatch.setattr(transformers_hub, "_hf_api", None)
        monkeypatch.setenv("HF_TOKEN", self.token)

    # ---- server lifetime

    def __enter__(self) -> "FakeHub":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.hub = self
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Response:
        url = urlsplit(raw_path)
        self.requests.append((method, url.path))
        for route_method, pattern, route in self._routes:
            match = pattern.fullmatch(url.path)
            if route_method == method and match:
                groups = {key: unquote(value) for key, value in match.groupdict().items() if value is not None}
                query = {key: values[-1] for key, values in parse_qs(url.query).items()}
                request = Request(method, groups, query, {key.lower(): value for key, value in headers.items()}, body)
                try:
                    with self._lock:
                        return route(request)
                except HubError as error:
                    response = json_response({"error": error.message}, error.status)
                    response.headers.update(error.headers)
                    return response
        return json_response({"error": f"The fake Hub has no route for {method} {url.path}."}, 404)

    # ---- helpers

    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository {repo_type} {repo_id} not found.", "RepoNotFound")
        return repo

    def _api_repo(self, request: Request) -> Repo:
        return self._repo(REPO_TYPE_OF_PLURAL[request.groups["api_prefix"]], request.groups["repo_id"])

    def _url_repo(self, request: Request) -> Repo:
        # Model repositories have no prefix in their URLs.
        return self._repo(REPO_TYPE_OF_PLURAL[request.groups.get("url_prefix", "models")], request.groups["repo_id"])

    def _check_token(self, request: Request) -> None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            raise HubError(
                401,
                "Invalid credentials in Authorization header: write calls need the fake Hub's token "
                "(FakeHub.token, set as HF_TOKEN by the fixture and by FakeHub.environ).",
            )

    def _add_commit(self, repo: Repo, message: str, files: dict[str, StoredFile]) -> Commit:
        parent = repo.commits[-1].oid if repo.commits else ""
        digest = json.dumps([parent, message, sorted((path, stored.etag) for path, stored in files.items())])
        now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
        commit = Commit(hashlib.sha1(digest.encode()).hexdigest(), message, files, now)
        repo.commits.append(commit)
        return commit

    # ---- routes

    def _create_repo(self, request: Request) -> Response:
        self._check_token(request)
        payload = request.json()
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or USER}/{payload['name']}"
        url = f"{self.endpoint}/{URL_PREFIX_OF_REPO_TYPE[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self._repos:
            # With `exist_ok=True` the client takes the repo URL from this answer.
            return json_response({"error": f"You already created this {repo_type} repo", "url": url}, 409)
        repo = self._repos[(repo_type, repo_id)] = Repo(repo_id)
        attributes = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES)
        self._add_commit(repo, "initial commit", {".gitattributes": StoredFile(attributes.encode(), lfs=False)})
        return json_response({"url": url, "name": repo_id})

    def _validate_yaml(self, request: Request) -> Response:
        try:
            card_metadata(request.json()["content"].encode())
        except HubError as error:
            return json_response({"errors": [{"message": error.message}], "warnings": []}, error.status)
        return json_response({"errors": [], "warnings": []})

    def _check_revision(self, request: Request, repo: Repo) -> None:
        if request.groups["revision"] != "main" or "create_pr" in request.query:
            raise HubError(
                404, "The fake Hub commits to 'main' only (no other branch, no pull request).", "RevisionNotFound"
            )

    def _preupload(self, request: Request) -> Response:
        self._check_token(request)
        repo = self._api_repo(request)
        self._check_revision(request, repo)
        current = repo.resolve("main").files
        answers = []
        for file in request.json()["files"]:
            lfs = file["path"].endswith(LFS_SUFFIXES) or file["size"] >= LFS_MIN_SIZE
            stored = current.get(file["path"])
            # The client skips a file whose oid it can reproduce (sha256 for LFS, git blob id otherwise).
            oid = None if stored is None else stored.etag
            answers.append(
                {"path": file["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        return json_response({"files": answers})

    def _lfs_batch(self, request: Request) -> Response:
        self._check_token(request)
        self._url_repo(request)
        payload = request.json()
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", ["basic"]):
            raise HubError(400, "The fake Hub's LFS batch API takes basic uploads only.")
        objects = []
        for item in payload["objects"]:
            answer = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if item["oid"] not in self._lfs_objects:
                storage = f"{self.endpoint}/fake-lfs-storage"
                answer["actions"] = {
                    "upload": {"href": f"{storage}/{item['oid']}"},
                    "verify": {"href": f"{storage}/verify"},
                }
            objects.append(answer)
        return json_response({"transfer": "basic", "objects": objects})

    def _lfs_upload(self, request: Request) -> Response:
        if hashlib.sha256(request.body).hexdigest() != request.groups["oid"]:
            raise HubError(400, f"Uploaded content does not hash to {request.groups['oid']}.")
        self._lfs_objects[request.groups["oid"]] = request.body
        return Response(content_type="text/plain")

    def _lfs_verify(self, request: Request) -> Response:
        payload = request.json()
        content = self._lfs_objects.get(payload["oid"])
        if content is None or len(content) != payload["size"]:
            raise HubError(404, f"LFS object {payload['oid']} of size {payload['size']} was not uploaded.")
        return json_response({})

    def _commit(self, request: Request) -> Response:
        self._check_token(request)
        repo = self._api_repo(request)
        self._check_revision(request, repo)
        files = dict(repo.resolve("main").files)
        message = ""
        for line in request.body.splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value["summary"]
            elif key == "file":
                files[value["path"]] = StoredFile(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                content = self._lfs_objects.get(value["oid"])
                if content is None:
                    raise HubError(422, f"{value['path']}: LFS object {value['oid']} was never uploaded.")
                files[value["path"]] = StoredFile(content, lfs=True)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {path: stored for path, stored in files.items() if not path.startswith(folder)}
            else:
                raise HubError(400, f"The fake Hub cannot commit a {key!r} operation.")
        if "README.md" in files:
            card_metadata(files["README.md"].content)
        commit = self._add_commit(repo, message, files)
        return json_response(
            {
                "commitUrl": f"{self.endpoint}/{repo.repo_id}/commit/{commit.oid}",
                "commitOid": commit.oid,
                "pullRequestUrl": None,
            }
        )

    def _repo_info(self, request: Request) -> Response:
        repo = self._api_repo(request)
        commit = repo.resolve(request.groups.get("revision", "main"))
        metadata = card_metadata(commit.files["README.md"].content) if "README.md" in commit.files else {}
        siblings = []
        for path, stored in sorted(commit.files.items()):
            sibling = {"rfilename": path}
            if "blobs" in request.query:
                sibling.update(size=len(stored.content), blobId=stored.git_oid)
                if stored.lfs:
                    sibling["lfs"] = {
                        "size": len(stored.content),
                        "sha256": stored.sha256,
                        "pointerSize": len(stored.lfs_pointer),
                    }
            siblings.append(sibling)
        return json_response(
            {
                "id": repo.repo_id,
                "author": repo.repo_id.split("/")[0],
                "sha": commit.oid,
                "lastModified": commit.date,
                "createdAt": repo.commits[0].date,
                "private": False,
                "disabled": False,
                "gated": False,
                "tags": metadata.get("tags", []),
                "pipeline_tag": metadata.get("pipeline_tag"),
                "library_name": metadata.get("library_name"),
                "cardData": metadata or None,
                "siblings": siblings,
            }
        )

    def _tree(self, request: Request) -> Response:
        repo = self._api_repo(request)
        commit = repo.resolve(request.groups["revision"])
        prefix = request.groups.get("path", "").strip("/")
        recursive = request.query.get("recursive", "false").lower() in ("true", "1")
        under = {path: stored for path, stored in commit.files.items() if not prefix or path.startswith(prefix + "/")}
        if prefix and not under:
            raise HubError(404, f"{prefix} does not exist in {repo.repo_id}.", "EntryNotFound")
        depth = prefix.count("/") + 1 if prefix else 0
        folders, entries = set(), []
        for path, stored in sorted(under.items()):
            parts = path.split("/")
            # Every folder between the listed one and the file; only the first level unless recursive.
            folders.update("/".join(parts[: level + 1]) for level in range(depth, len(parts) - 1))
            if recursive or len(parts) == depth + 1:
                entry = {"type": "file", "path": path, "size": len(stored.content), "oid": stored.git_oid}
                if stored.lfs:
                    entry["lfs"] = {
                        "oid": stored.sha256,
                        "size": len(stored.content),
                        "pointerSize": len(stored.lfs_pointer),
                    }
                entries.append(entry)
        listed_folders = [folder for folder in sorted(folders) if recursive or folder.count("/") == depth]
        entries += [
            {"type": "directory", "path": folder, "oid": git_blob_oid(folder.encode())} for folder in listed_folders
        ]
        return json_response(entries)

    def _resolve(self, request: Request) -> Response:
        repo = self._url_repo(request)
        commit = repo.resolve(request.groups["revision"])
        stored = commit.files.get(request.groups["path"])
        if stored is None:
            # With the commit id, the client records the miss against this commit and does not ask again.
            raise HubError(
                404,
                f"{request.groups['path']} does not exist in {repo.repo_id}.",
                "EntryNotFound",
                headers={"X-Repo-Commit": commit.oid},
            )
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{stored.etag}"'}
        if stored.lfs:
            headers.update({"X-Linked-Etag": f'"{stored.etag}"', "X-Linked-Size": str(len(stored.content))})
        return Response(stored.content, headers=headers, content_type="application/octet-stream")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        body = self._read_body()
        try:
            response = self.server.hub.handle(self.command, self.path, dict(self.headers), body)
        except Exception as error:  # a bug in the fake: tell the client instead of hanging up
            response = json_response({"error": f"Fake Hub failure: {type(error).__name__}: {error}"}, 500)
        self.send_response(response.status)
        for key, value in {"Content-Type": response.content_type, **response.headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailer headers
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args) -> None:
        """Silent: `FakeHub.requests` records the traffic."""


@pytest.fixture(name="fake_hub")
def fake_hub_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A running `FakeHub`, with this process's Hub client pointed at it and downloading into a temporary cache."""
    with FakeHub() as hub:
        hub.patch_client(monkeypatch, tmp_path / "hub_cache")
        yield hub
