"""Receiving a dataset upload: streamed to a temp file with the byte limit enforced while reading.

Two body forms: a raw zip (`Content-Type: application/zip`, name in `?name=`) or
multipart/form-data with the zip in field `file` (and optionally a `name` field). Multipart
is decoded incrementally, so neither form ever holds the upload in memory. Any failure
removes the temp file: a refused or broken upload leaves no row and no file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import unicodedata
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from server.datasets import store
from server.datasets.safe_zip import UnsafeZipError, ZipLimits, inspect_zip
from server.errors import ApiError, bad_request, invalid_input
from server.state import ServerState

READ_CHUNK = 1 << 16
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and a short name field
MAX_FIELD_BYTES = 1024
MAX_NAME_CHARS = 100
MAX_PARTS = 16  # 'file' and 'name' are all we read; a few more (browser extras) are ignored
RAW_ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed", "application/octet-stream"})


def uploads_dir(state: ServerState) -> Path:
    # Beside the final folders, so moving a finished upload into place is a rename, not a copy.
    path = state.config.datasets_dir / ".uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the upload is larger than this server's limit of {limit} bytes")


def clean_name(raw: str | None, fallback: str) -> str:
    name = unicodedata.normalize("NFC", (raw or "").strip()) or fallback
    if len(name) > MAX_NAME_CHARS:
        raise invalid_input(f"the dataset name is longer than {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise invalid_input("the dataset name contains control characters")
    return name


class _CappedWriter:
    """Writes to a file and refuses to go past `limit` bytes."""

    def __init__(self, fh: BinaryIO, limit: int):
        self.fh, self.limit, self.count = fh, limit, 0

    def write(self, data: bytes) -> None:
        self.count += len(data)
        if self.count > self.limit:
            raise _too_large(self.limit)
        self.fh.write(data)


def _copy_raw(stream, writer: _CappedWriter) -> None:
    while chunk := stream.read(READ_CHUNK):
        writer.write(chunk)


def _copy_multipart(stream, boundary: bytes, writer: _CappedWriter) -> tuple[str | None, str | None]:
    """Stream the `file` part into `writer`; return (name field, uploaded filename)."""
    # No decoder memory cap: it counts its whole input buffer; we drain it every chunk and cap fields ourselves.
    decoder = MultipartDecoder(boundary, max_parts=MAX_PARTS)
    current: str | None = None
    fields: dict[str, bytearray] = {}
    filename = None
    found_file = finished = False
    while not finished:
        chunk = stream.read(READ_CHUNK)
        decoder.receive_data(chunk or None)
        while True:
            try:
                event = decoder.next_event()
            except ValueError as exc:
                raise bad_request(f"the multipart body is malformed: {exc}") from exc
            except RequestEntityTooLarge:  # the decoder's part count, not the body's size
                raise bad_request(f"the multipart body has more than {MAX_PARTS} parts; send the zip in "
                                  "field 'file' and optionally a 'name' field") from None
            if isinstance(event, NeedData):
                break
            if isinstance(event, (File, Field)):
                current = event.name
                if current == "file":  # a File part normally; a plain Field when sent without a filename
                    if found_file:
                        raise bad_request("send exactly one 'file' part")
                    found_file = True
                    filename = event.filename if isinstance(event, File) else None
                elif isinstance(event, File):
                    raise bad_request(f"send the zip in form field 'file' (got a file in field {current!r})")
                else:
                    fields[current] = bytearray()
            elif isinstance(event, Data):
                if current == "file":
                    writer.write(event.data)
                elif current is not None:
                    fields[current] += event.data
                    if len(fields[current]) > MAX_FIELD_BYTES:
                        raise bad_request(f"form field {current!r} is too long")
            elif isinstance(event, Epilogue):
                finished = True
                break
        if not chunk and not finished:
            raise bad_request("the multipart body ended before its closing boundary")
    if not found_file:
        raise bad_request("the multipart body has no 'file' field holding the zip")
    name = bytes(fields["name"]).decode("utf-8", "replace") if "name" in fields else None
    return name, filename


@contextmanager
def _temp_upload(state: ServerState) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=uploads_dir(state))
    os.close(fd)
    path = Path(name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)  # moved away on success; removed on any failure or disconnect


def receive_dataset_upload(state: ServerState) -> dict:
    """Read the request body, check the zip, register the dataset. Returns the new row."""
    config = state.config
    limit = config.max_upload_bytes
    mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
    mimetype = mimetype.lower()  # media types are case-insensitive (RFC 9110 8.3.1)
    multipart = mimetype == "multipart/form-data"
    if not multipart and mimetype not in RAW_ZIP_TYPES:
        raise ApiError(
            415, "unsupported_media_type",
            "send the zip as the body with 'Content-Type: application/zip', or as multipart/form-data field 'file'",
        )
    query_name = request.args.get("name")
    if query_name is not None:
        clean_name(query_name, "dataset")  # a bad name is refused before the body is read
    declared = request.content_length
    if declared is not None and declared > limit + (MULTIPART_OVERHEAD if multipart else 0):
        raise _too_large(limit)  # refuse before reading a byte

    with _temp_upload(state) as tmp:
        with open(tmp, "wb") as fh:
            writer = _CappedWriter(fh, limit)
            if multipart:
                boundary = options.get("boundary")
                if not boundary:
                    raise bad_request("multipart/form-data without a boundary")
                field_name, filename = _copy_multipart(request.stream, boundary.encode("latin-1"), writer)
            else:
                _copy_raw(request.stream, writer)
                field_name, filename = None, None
        if writer.count == 0:
            raise bad_request("the upload is empty: send a zip of images")
        fallback = Path(filename.replace("\\", "/")).stem if filename else "dataset"
        name = clean_name(field_name or query_name, fallback)
        try:
            summary = inspect_zip(tmp, ZipLimits.from_config(config))
        except UnsafeZipError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from exc

        dataset_id = store.new_dataset_id()
        folder = store.dataset_dir(state, dataset_id)
        folder.mkdir(parents=True)
        try:
            os.replace(tmp, folder / store.SOURCE_ZIP)
            return store.insert_dataset(state.db, dataset_id, name, writer.count, summary.images)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
