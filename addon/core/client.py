"""HTTP client for the Latent Studio companion server.

Imports no bpy: it runs on worker threads and is tested with plain pytest. Every request
has a timeout; every failure becomes a ClientError whose message a user understands.
"""

from __future__ import annotations

import os
import time
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from urllib3.exceptions import ProtocolError  # ships with requests (and with Blender)

from .api import API_PREFIX
from .messages import refusal

# Every server route the client calls: method name -> (HTTP method, path template under
# API_PREFIX). Methods build their paths from here only, so this table is the whole list
# of calls, and tests/unit/test_addon_contract.py checks it against the server's OpenAPI.
ROUTES = {
    "health": ("GET", "/health"),
    "upload_dataset": ("POST", "/datasets"),
    "get_dataset": ("GET", "/datasets/{dataset_id}"),
    "prepare_dataset": ("POST", "/datasets/{dataset_id}/prepare"),
    "dataset_report": ("GET", "/datasets/{dataset_id}/report"),
    "download_preview": ("GET", "/datasets/{dataset_id}/preview"),
    "delete_dataset": ("DELETE", "/datasets/{dataset_id}"),
    "list_models": ("GET", "/models"),
    "rescan_models": ("POST", "/models/rescan"),
    "delete_model": ("DELETE", "/models/{model_id}"),
    "create_job": ("POST", "/jobs"),
    "list_jobs": ("GET", "/jobs"),
    "cancel_job": ("POST", "/jobs/{job_id}/cancel"),
    "resume_job": ("POST", "/jobs/{job_id}/resume"),
    "list_snapshots": ("GET", "/jobs/{job_id}/snapshots"),
    "download_grid": ("GET", "/jobs/{job_id}/grid.png"),
    "download_snapshot_grid": ("GET", "/jobs/{job_id}/snapshots/{step}/grid.png"),
    "download_chart": ("GET", "/jobs/{job_id}/chart.png"),
    "download_timelapse": ("GET", "/jobs/{job_id}/timelapse.mp4"),
    "download_timelapse_frames": ("GET", "/jobs/{job_id}/timelapse/frames.zip"),
    "delete_job": ("DELETE", "/jobs/{job_id}"),
    "generate": ("POST", "/generate"),
    "create_walk": ("POST", "/walks"),
    "get_walk": ("GET", "/walks/{walk_id}"),
    "download_walk": ("GET", "/walks/{walk_id}/frames.zip"),
    "delete_walk": ("DELETE", "/walks/{walk_id}"),
    "create_projection": ("POST", "/projections"),
    "get_projection": ("GET", "/projections/{projection_id}"),
    "explore": ("POST", "/explore"),
    "list_directions": ("GET", "/models/{model_id}/directions"),
    "download_direction_preview": ("GET", "/models/{model_id}/directions/{direction_id}/preview.png"),
}

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
    """Raise ClientError unless `url` is a usable http(s) server address; return it normalised:
    no trailing slash and no API prefix, as the server prints its address with /api/v1 and
    users paste it from there (the client adds the prefix to every route itself)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClientError(f"Server URL {url!r} is not an http:// or https:// address")
    path = parts.path.rstrip("/")
    if path.endswith(API_PREFIX):
        path = path[:-len(API_PREFIX)].rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))  # routes are appended to it


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


class _Busy(Exception):
    """A 503 answer: the error to raise if it is not retried, and how long to wait first
    (None: no usable Retry-After, so not retried)."""

    def __init__(self, error, wait_s):
        super().__init__(str(error))
        self.error, self.wait_s = error, wait_s


def _retry_after(resp, most_s):
    """Retry-After in seconds when it is a number from 0 to `most_s`, else None (an HTTP date,
    or a wait too long to hold the user's request for)."""
    try:
        wait = float(resp.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return wait if 0 <= wait <= most_s else None


class LatentClient:
    # A full generation or walk queue answers 503 + Retry-After (5 s): the request changed
    # nothing, so it is sent again after that wait, a few times, before the user hears of it.
    # Calls run on the add-on's worker threads, never Blender's, so the wait freezes nothing.
    BUSY_RETRIES = 3
    BUSY_MAX_WAIT_S = 10.0

    def __init__(self, base_url, token="", timeout=10.0, long_timeout=120.0):
        self.base_url = check_url(base_url)
        self.token = token or ""
        self.timeout = timeout
        self.long_timeout = long_timeout
        self.session = requests.Session()
        self.sleep = time.sleep  # tests may count the waits

    # -- plumbing ---------------------------------------------------------------------

    def url(self, path):
        return self.base_url + API_PREFIX + path

    def _headers(self, extra=None):
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def request(self, method, path, *, json_body=None, data=None, params=None, headers=None,
                timeout=None, stream=False):
        replayable = data is None or isinstance(data, (bytes, str))  # a streamed upload cannot be resent
        for attempt in range(self.BUSY_RETRIES + 1):
            try:
                return self._request_once(method, path, json_body=json_body, data=data, params=params,
                                          headers=headers, timeout=timeout, stream=stream)
            except _Busy as busy:
                if not replayable or attempt == self.BUSY_RETRIES or busy.wait_s is None:
                    raise busy.error from None
                self.sleep(busy.wait_s)
        raise AssertionError("unreachable")

    def _request_once(self, method, path, *, json_body, data, params, headers, timeout, stream):
        url = self.url(path)
        wait = timeout or self.timeout
        read_wait = wait[-1] if isinstance(wait, tuple) else wait  # (connect, read) or one for both
        try:
            resp = self.session.request(
                method, url, json=json_body, data=data, params=params, headers=self._headers(headers),
                timeout=wait, stream=stream,
            )
        except requests.exceptions.ConnectTimeout:
            raise ClientError(f"Timed out connecting to the server at {self.base_url}") from None
        except requests.exceptions.ReadTimeout:
            raise ClientError(
                f"The server at {self.base_url} did not answer within {read_wait:g} s"
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
        if resp.status_code == 503:
            raise _Busy(self._error(resp), _retry_after(resp, self.BUSY_MAX_WAIT_S))
        if resp.status_code >= 400:
            raise self._error(resp)
        return resp

    def _error(self, resp):
        # The server's errors are {"error": {"code", "message"}}; anything else (a proxy, a
        # crash page) is shown by its first line.
        code = message = None
        try:
            err = resp.json().get("error")
            code, message = err.get("code"), err.get("message")
        except (ValueError, AttributeError):
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
        return ClientError(refusal(resp.status_code, code, message), status=resp.status_code, code=code)

    @staticmethod
    def _json(resp):
        try:
            return resp.json()
        except ValueError:
            raise ClientError(f"The server sent something that is not JSON (HTTP {resp.status_code})") from None

    def download(self, method, path, dest, *, json_body=None, on_progress=None, should_stop=None,
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

    # -- API routes (one method per ROUTES entry) ----------------------------------------

    @staticmethod
    def route(name, **params):
        """(HTTP method, path) of ROUTES[name] with its {placeholders} filled in, URL-quoted."""
        method, template = ROUTES[name]
        return method, template.format(**{k: quote(str(v), safe="") for k, v in params.items()})

    def _json_call(self, name, body=None, **params):
        method, path = self.route(name, **params)
        if method == "POST":
            return self._json(self.request(method, path, json_body=body if body is not None else {}))
        return self._json(self.request(method, path))

    def health(self):
        return self._json_call("health")

    def upload_dataset(self, zip_path, name=None, on_progress=None, should_stop=None):
        method, path = self.route("upload_dataset")
        reader = _ProgressReader(zip_path, on_progress, should_stop)
        try:
            resp = self.request(
                method, path, data=reader, params={"name": name} if name else None,
                headers={"Content-Type": "application/zip", "Content-Length": str(reader.total)},
                timeout=(self.timeout, self.long_timeout),
            )
        finally:
            reader.close()
        return self._json(resp)

    def get_dataset(self, dataset_id):
        return self._json_call("get_dataset", dataset_id=dataset_id)

    def prepare_dataset(self, dataset_id, options):
        return self._json_call("prepare_dataset", options, dataset_id=dataset_id)

    def dataset_report(self, dataset_id):
        return self._json_call("dataset_report", dataset_id=dataset_id)

    def download_preview(self, dataset_id, dest):
        return self.download(*self.route("download_preview", dataset_id=dataset_id), dest)[0]

    def _delete(self, name, **params):
        """DELETE answers 204 without a body: nothing to read."""
        self.request(*self.route(name, **params))

    def list_models(self):
        return self._json_call("list_models")

    def rescan_models(self):
        """Like list_models, after the server imported what is new in its models folder (slow)."""
        method, path = self.route("rescan_models")
        return self._json(self.request(method, path, json_body={}, timeout=(self.timeout, self.long_timeout)))

    def delete_model(self, model_id):
        self._delete("delete_model", model_id=model_id)

    def delete_dataset(self, dataset_id):
        self._delete("delete_dataset", dataset_id=dataset_id)

    def create_job(self, body):
        return self._json_call("create_job", body)

    def list_jobs(self):
        return self._json_call("list_jobs")

    def cancel_job(self, job_id):
        return self._json_call("cancel_job", job_id=job_id)

    def resume_job(self, job_id, steps=None):
        return self._json_call("resume_job", {"steps": steps} if steps else {}, job_id=job_id)

    def list_snapshots(self, job_id):
        return self._json_call("list_snapshots", job_id=job_id)

    def download_grid(self, job_id, dest):
        """The newest sample grid of a job."""
        return self.download(*self.route("download_grid", job_id=job_id), dest)[0]

    def download_snapshot_grid(self, job_id, step, dest):
        """The sample grid of one snapshot (so the add-on knows which step it shows)."""
        return self.download(*self.route("download_snapshot_grid", job_id=job_id, step=step), dest)[0]

    def download_chart(self, job_id, dest):
        """The chart of a job's progress (drawn by the server when it has moved on)."""
        return self.download(*self.route("download_chart", job_id=job_id), dest)[0]

    def download_timelapse(self, job_id, dest, on_progress=None, should_stop=None):
        """The job's time-lapse MP4: one frame per snapshot grid."""
        return self.download(*self.route("download_timelapse", job_id=job_id), dest, on_progress=on_progress,
                             should_stop=should_stop)[0]

    def download_timelapse_frames(self, job_id, dest, on_progress=None, should_stop=None):
        """The same frames as a zip of PNGs numbered from 1 (with frames.json: number -> step)."""
        return self.download(*self.route("download_timelapse_frames", job_id=job_id), dest,
                             on_progress=on_progress, should_stop=should_stop)[0]

    def delete_job(self, job_id):
        self._delete("delete_job", job_id=job_id)

    def generate(self, body, dest, should_stop=None):
        """Writes the PNG (one seed) or zip (several) answer to `dest`; returns its content type."""
        return self.download(*self.route("generate"), dest, json_body=body, should_stop=should_stop)[1]

    def create_walk(self, body):
        return self._json_call("create_walk", body)

    def get_walk(self, walk_id):
        return self._json_call("get_walk", walk_id=walk_id)

    def download_walk(self, walk_id, dest, on_progress=None, should_stop=None):
        return self.download(*self.route("download_walk", walk_id=walk_id), dest, on_progress=on_progress,
                             should_stop=should_stop)[0]

    def delete_walk(self, walk_id):
        self._delete("delete_walk", walk_id=walk_id)

    def create_projection(self, body):
        """POST /projections (the image inside as base64: bodies of a few MB, so the long timeout)."""
        method, path = self.route("create_projection")
        return self._json(self.request(method, path, json_body=body, timeout=(self.timeout, self.long_timeout)))

    def get_projection(self, projection_id):
        return self._json_call("get_projection", projection_id=projection_id)

    def explore(self, body):
        """The explorer's grid as JSON (every cell's z, w and PNG); rendering it takes a while."""
        method, path = self.route("explore")
        return self._json(self.request(method, path, json_body=body, timeout=(self.timeout, self.long_timeout)))

    def list_directions(self, model_id, query=""):
        """A model's semantic directions (`query`: layers=&k=); the first call may load the model."""
        method, path = self.route("list_directions", model_id=model_id)
        return self._json(self.request(method, path + (f"?{query}" if query else ""),
                                       timeout=(self.timeout, self.long_timeout)))

    def download_direction_preview(self, model_id, direction_id, query, dest):
        """A direction's preview strip PNG into `dest` (`query`: amount=&seed=&psi=)."""
        method, path = self.route("download_direction_preview", model_id=model_id, direction_id=direction_id)
        return self.download(method, path + (f"?{query}" if query else ""), dest)[0]
