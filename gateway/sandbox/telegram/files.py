"""Files: what customers send and the bot uploads, `getFile`, and the download route
(`/file/bot<token>/<file_path>`, 20 MB at most like Telegram).

Example:
    >>> files = Files()
    >>> fid = files._store("document", b"%PDF-1.4", file_name="a.pdf")
    >>> files._file_obj(fid)["file_name"], files._files[fid]["file_path"]
    ('a.pdf', 'documents/file_1.pdf')
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.sandbox.telegram.state import SandboxState
from gateway.sandbox.telegram.wire import _P, DOWNLOAD_LIMIT, ApiError, _error

_KINDS = {"photo": ("photos", ".jpg", "image/jpeg"), "document": ("documents", "", ""),
          "voice": ("voice", ".oga", "audio/ogg")}


class Files(SandboxState):
    """Stored files and their downloads (a mixin of `TelegramSandbox`)."""

    def _store(self, kind: str, data: bytes | int, *, size_only: bool = False,
               file_name: str | None = None, mime_type: str | None = None,
               **extra: Any) -> str:
        number = len(self._files) + 1
        folder, suffix, default_mime = _KINDS[kind]
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[1]
        fid = f"AgAC{kind[:3]}{number:06d}"
        path = f"{folder}/file_{number}{suffix}"
        size = data if isinstance(data, int) else len(data)
        blob = None if size_only or isinstance(data, int) else bytes(data)
        self._files[fid] = {"file_id": fid, "file_unique_id": f"AQAD{number:06d}", "kind": kind,
                            "file_size": size, "file_path": path, "data": blob,
                            "file_name": file_name, "mime_type": mime_type or default_mime,
                            **extra}
        self._paths[path] = fid
        return fid

    def _file_obj(self, fid: str) -> Any:
        f = self._files[fid]
        base = {"file_id": fid, "file_unique_id": f["file_unique_id"], "file_size": f["file_size"]}
        if f["kind"] == "photo":
            return [{**base, "width": f.get("width", 800), "height": f.get("height", 600)}]
        if f["kind"] == "voice":
            return {**base, "duration": f.get("duration", 1), "mime_type": f["mime_type"]}
        return {**base, **({"file_name": f["file_name"]} if f["file_name"] else {}),
                **({"mime_type": f["mime_type"]} if f["mime_type"] else {})}

    async def _get_file(self, p: _P, files: _P, request: Request) -> Any:
        f = self._files.get(p.get("file_id") or "")
        if f is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if f["file_size"] > DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {k: f[k] for k in ("file_id", "file_unique_id", "file_size", "file_path")}

    async def _download(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        self.calls["download"] += 1
        fid = self._paths.get(request.path_params["path"])
        blob = self._files[fid]["data"] if fid else None
        if blob is None:
            return _error(404, "Not Found")
        mime = self._files[fid]["mime_type"] or "application/octet-stream"
        return Response(blob, media_type=mime)
