"""HTTP client for the Latent Studio companion server.

Imports no bpy: it runs on worker threads and is tested with plain pytest. Every request
has a timeout; every failure becomes a ClientError whose message a user understands.
"""

from __future__ import annotations

import os
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import ProtocolError  # ships with requests (and with Blender)

API_PREFIX = "/api/v1"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
CHUNK = 64 * 1024


class ClientError(Exception):
    """A request failed; `message` is meant for the user, `status`/`code` for code."""

    def __init__(self, message, status=None, code=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def is_local_url(url):
    """True when `url` points at this machine (allowed even without online access)."""
    host = (urlsplit(url).hostname or "").lower()
    return host in LOCAL_HOSTS or host.startswith("127.")


def check_url(url):
    """Raise ClientError unless `url` is a usable http(s) server address; return it normalised."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClientError(f"Server URL {url!r} is not an http:// or https:// address")
    return url.rstrip("/")


class _ProgressReader:
    """File-like wrapper that reports how many bytes requests has read so far."""

    def __init__(self, path, on_progress=None, should_stop=None):
        self._file = open(path, "rb")
        self.total = os.path.getsize(path)
        self.sent = 0
        self._on_progress = on_progress
        self._should_stop = should_stop

    def __len__(self):
        return self.total - self.sent

    def read(self, size=-1):
        if self._should_stop is not None and self._should_stop():
            raise ClientError("Upload cancelled")
        if size is None or size < 0 or size > CHUNK:
            size = CHUNK
        data = self._file.read(size)
        self.sent += len(data)
        if self._on_progress is not None and data:
            self._on_progress(self.sent, self.total)
        return data

    def close(self):
        self._file.close()


class LatentClient:
    def __init__(self, base_url, token="", timeout=10.0, long_timeout=120.0):
        self.base_url = check_url(base_url)
        self.token = token or ""
        self.timeout = timeout
        self.long_timeout = long_timeout
        self.session = requests.Session()

    # -- plumbing ---------------------------------------------------------------------

    def url(self, path):
        if path.startswith("http://") or path.startswith("https://"):
            return path
        if path.startswith(API_PREFIX):
            return self.base_url + path
        return self.base_url + API_PREFIX + path

    def _headers(self, extra=None):
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def request(self, method, path, *, json_body=None, data=None, params=None, headers=None,
                timeout=None, stream=False):
        url = self.url(path)
        try:
            resp = self.session.request(
                method, url, json=json_body, data=data, params=params, headers=self._headers(headers),
                timeout=timeout or self.timeout, stream=stream,
            )
        except requests.exceptions.ConnectTimeout:
            raise ClientError(f"Timed out connecting to the server at {self.base_url}") from None
        except requests.exceptions.ReadTimeout:
            raise ClientError(
                f"The server at {self.base_url} did not answer within {timeout or self.timeout:g} s"
            ) from None
        except requests.exceptions.ConnectionError as exc:
            if isinstance(getattr(exc, "__context__", None), ClientError):
                raise exc.__context__ from None
            if exc.args and isinstance(exc.args[0], ProtocolError):  # connected, then lost it
                raise ClientError(
                    f"The connection to the server at {self.base_url} was lost during the request "
                    "(did the server stop?). Nothing on this computer was changed: try again when it is back."
                ) from None
            raise ClientError(
                f"Cannot connect to the server at {self.base_url}: is it running? (start it with `latent-studio serve`)"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise ClientError(f"Request to {url} failed: {exc}") from None
        if resp.status_code >= 400:
            raise self._error(resp)
        return resp

    def _error(self, resp):
        code = None
        message = None
        try:
            body = resp.json()
            err = body.get("error") if isinstance(body, dict) else None
            if isinstance(err, dict):
                code = err.get("code")
                message = err.get("message")
            elif isinstance(err, str):
                message = err
        except ValueError:
            pass
        if resp.status_code == 401:
            return ClientError(
                "The server refused the access token (401): copy the token the server printed into the "
                "add-on preferences" + (f" ({message})" if message else ""),
                status=401, code=code or "unauthorized",
            )
        if message is None:
            text = (resp.text or "").strip().splitlines()
            message = text[0][:200] if text else resp.reason
        return ClientError(f"Server error {resp.status_code}: {message}", status=resp.status_code, code=code)

    def get_json(self, path, **kw):
        return self._json(self.request("GET", path, **kw))

    def post_json(self, path, body=None, **kw):
        return self._json(self.request("POST", path, json_body=body if body is not None else {}, **kw))

    @staticmethod
    def _json(resp):
        try:
            return resp.json()
        except ValueError:
            raise ClientError(f"The server sent something that is not JSON (HTTP {resp.status_code})") from None

    def download(self, path, dest, *, method="GET", json_body=None, on_progress=None, should_stop=None,
                 timeout=None):
        """Stream a response body into `dest` (written to a temp name, then renamed).

        Returns (dest, content_type)."""
        resp = self.request(method, path, json_body=json_body, stream=True, timeout=timeout or self.long_timeout)
        total = int(resp.headers.get("Content-Length") or 0)
        tmp = f"{dest}.part"
        done = 0
        os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
        try:
            with open(tmp, "wb") as fh:
                for chunk in resp.iter_content(CHUNK):
                    if should_stop is not None and should_stop():
                        raise ClientError("Download cancelled")
                    fh.write(chunk)
                    done += len(chunk)
                    if on_progress is not None:
                        on_progress(done, total)
            os.replace(tmp, dest)
        except requests.exceptions.RequestException:
            got = f"{done} of {total} bytes" if total else f"{done} bytes"
            raise ClientError(
                f"Download of {path} broke off after {got}: the server closed the connection. Try again."
            ) from None
        finally:
            resp.close()
            if os.path.exists(tmp):
                os.remove(tmp)
        return dest, resp.headers.get("Content-Type", "")

    # -- API routes -------------------------------------------------------------------

    def health(self):
        return self.get_json("/health")

    def list_datasets(self):
        return self.get_json("/datasets")

    def upload_dataset(self, zip_path, name=None, on_progress=None, should_stop=None):
        reader = _ProgressReader(zip_path, on_progress, should_stop)
        try:
            resp = self.request(
                "POST", "/datasets", data=reader, params={"name": name} if name else None,
                headers={"Content-Type": "application/zip", "Content-Length": str(reader.total)},
                timeout=(self.timeout, self.long_timeout),
            )
        finally:
            reader.close()
        return self._json(resp)

    def get_dataset(self, dataset_id):
        return self.get_json(f"/datasets/{quote(str(dataset_id))}")

    def prepare_dataset(self, dataset_id, options):
        return self.post_json(f"/datasets/{quote(str(dataset_id))}/prepare", options)

    def dataset_report(self, dataset_id):
        return self.get_json(f"/datasets/{quote(str(dataset_id))}/report")

    def download_preview(self, dataset_id, dest):
        return self.download(f"/datasets/{quote(str(dataset_id))}/preview", dest)[0]

    def list_models(self):
        return self.get_json("/models")

    def create_job(self, body):
        return self.post_json("/jobs", body)

    def list_jobs(self):
        return self.get_json("/jobs")

    def get_job(self, job_id):
        return self.get_json(f"/jobs/{quote(str(job_id))}")

    def cancel_job(self, job_id):
        return self.post_json(f"/jobs/{quote(str(job_id))}/cancel")

    def resume_job(self, job_id, steps=None):
        return self.post_json(f"/jobs/{quote(str(job_id))}/resume", {"steps": steps} if steps else {})

    def list_snapshots(self, job_id):
        return self.get_json(f"/jobs/{quote(str(job_id))}/snapshots")

    def download_grid(self, job_id, dest, step=None):
        if step is None:
            path = f"/jobs/{quote(str(job_id))}/grid.png"
        else:
            path = f"/jobs/{quote(str(job_id))}/snapshots/{int(step)}/grid.png"
        return self.download(path, dest)[0]

    def generate(self, body, dest, should_stop=None):
        """POST /generate; writes the PNG or zip answer to `dest`; returns its content type."""
        return self.download("/generate", dest, method="POST", json_body=body, should_stop=should_stop)[1]

    def create_walk(self, body):
        return self.post_json("/walks", body)

    def get_walk(self, walk_id):
        return self.get_json(f"/walks/{quote(str(walk_id))}")

    def download_walk(self, walk_id, dest, on_progress=None, should_stop=None):
        return self.download(f"/walks/{quote(str(walk_id))}/frames.zip", dest, on_progress=on_progress,
                             should_stop=should_stop)[0]


def describe_health(info):
    """One line for the UI: 'Latent Studio 0.1.0 on NVIDIA H100 (cuda)'."""
    if not isinstance(info, dict):
        return "Connected"
    version = info.get("version", "?")
    device = info.get("device") or "?"
    name = info.get("device_name")
    where = f"{name} ({device})" if name and str(name).lower() != str(device).lower() else str(name or device)
    return f"Server {version} on {where}"
