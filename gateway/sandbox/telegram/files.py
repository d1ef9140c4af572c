"""Files: what customers send and the bot uploads, `getFile`, and the download route
(`/file/bot<token>/<file_path>`, 20 MB at most like Telegram) — and files that cannot be
fetched: gone (404), refused (401), or never answered (a client's timeout ends it).

Example:
    >>> files = Files()
    >>> fid = files._store("document", b"%PDF-1.4", file_name="a.pdf")
    >>> files._file_obj(fid)["file_name"], files._files[fid]["file_path"]
    ('a.pdf', 'documents/file_1.pdf')
    >>> files.fail_file(fid, 404)        # its download now answers 404 Not Found
    >>> files.hang_file(fid, via="getFile")   # getFile for it is never answered
    >>> files.mend_file(fid)             # fetched normally again
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.sandbox.telegram.state import FileFault, SandboxState
from gateway.sandbox.telegram.wire import _P, _STATUS_TEXT, DOWNLOAD_LIMIT, ApiError, _error

_VIA = ("getFile", "download")
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

    # -- files that cannot be fetched -----------------------------------------------------

    def fail_file(self, file_id: str, status: int = 404, *, via: str = "download") -> None:
        """Every getFile (`via="getFile"`) or download (`via="download"`) of this file answers
        `status` — 404 gone, 401 refused, 500… — until `mend_file`."""
        self._fault(file_id, FileFault(via, status))

    def hang_file(self, file_id: str, *, via: str = "download") -> None:
        """Every getFile or download of this file waits unanswered until `mend_file` (or the
        sandbox stops): the client's own timeout ends it."""
        self._fault(file_id, FileFault(via, None))

    def mend_file(self, file_id: str) -> None:
        """This file is fetched normally again; a hanging request is answered now."""
        fault = self._file_faults.pop(file_id, None)
        if fault is not None:
            fault.released.set()

    def _mend_all_files(self) -> None:
        for file_id in list(self._file_faults):
            self.mend_file(file_id)

    def _fault(self, file_id: str, fault: FileFault) -> None:
        if file_id not in self._files:
            raise KeyError(f"no file {file_id!r} in the sandbox")
        if fault.via not in _VIA:
            raise ValueError(f"via must be one of {_VIA}, not {fault.via!r}")
        self.mend_file(file_id)
        self._file_faults[file_id] = fault

    async def _file_fault(self, file_id: str, via: str) -> None:
        """Note the request, then apply this file's fault, if any (ApiError, or a wait)."""
        self.file_requests.append({"file_id": file_id, "via": via})
        fault = self._file_faults.get(file_id)
        if fault is None or fault.via != via:
            return
        if fault.status is None:
            await fault.released.wait()
            return
        raise ApiError(fault.status, _STATUS_TEXT.get(fault.status, "Error"))

    # -- getFile and downloads -------------------------------------------------------------

    async def _get_file(self, p: _P, files: _P, request: Request) -> Any:
        f = self._files.get(p.get("file_id") or "")
        if f is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        await self._file_fault(f["file_id"], "getFile")
        if f["file_size"] > DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {k: f[k] for k in ("file_id", "file_unique_id", "file_size", "file_path")}

    async def _download(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        self.calls["download"] += 1
        fid = self._paths.get(request.path_params["path"])
        if fid is not None:
            try:
                await self._file_fault(fid, "download")
            except ApiError as exc:
                return _error(exc.status, exc.description)
        blob = self._files[fid]["data"] if fid else None
        if blob is None:
            return _error(404, "Not Found")
        mime = self._files[fid]["mime_type"] or "application/octet-stream"
        return Response(blob, media_type=mime)
