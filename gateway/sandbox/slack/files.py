"""Files: what customers share (stored here, `url_private` needing the bot token), the
upload flow of files_upload_v2 (files.getUploadURLExternal, the upload URL,
files.completeUploadExternal), files.info, and the downloads.

Example:
    >>> await client.files_upload_v2(channel="C0AGENTS", content=b"%PDF", filename="a.pdf")
    ...                                                                 # doctest: +SKIP
    >>> sandbox.uploads[-1]["filename"], sandbox.uploads[-1]["bytes"]   # doctest: +SKIP
    ('a.pdf', b'%PDF')
"""

from __future__ import annotations

import asyncio
import hmac
import mimetypes
import secrets
import time
from typing import Any
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from gateway.sandbox.slack.wire import _P, SlackError, _int
from gateway.sandbox.slack.workspace import Workspace


class Files(Workspace):
    """Stored files, the files.* methods and the upload and download routes (a mixin of
    `SlackSandbox`)."""

    def _file_object(self, fid: str) -> dict[str, Any]:
        f = self._files[fid]
        name = f["name"]
        base = f"{self.url}/files-pri/{self.team_id}-{fid}"
        obj = {"id": fid, "created": f["created"], "timestamp": f["created"], "name": name,
               "title": f["title"], "mimetype": f["mimetype"], "filetype": f["filetype"],
               "pretty_type": f["filetype"].upper(), "user": f["user"],
               "user_team": self.team_id, "editable": False, "size": f["size"],
               "mode": "hosted", "is_external": False, "external_type": "", "is_public": True,
               "public_url_shared": False, "display_as_bot": False, "username": "",
               "url_private": f"{base}/{quote(name)}",
               "url_private_download": f"{base}/download/{quote(name)}",
               "permalink": f"https://{self.team_domain}.slack.com/files/{f['user']}/{fid}/"
                            f"{quote(name)}",
               "has_rich_preview": False, "file_access": "visible"}
        if f.get("alt_txt"):
            obj["alt_txt"] = f["alt_txt"]
        if f["shares"]:
            obj["shares"] = {"public" if not self._channels[c]["is_private"] else "private":
                             {c: shares} for c, shares in f["shares"].items()}
            obj["channels"] = list(f["shares"])
        return obj

    def _store_file(self, name: str, data: bytes | None, *, user: str, mimetype: str = "",
                    title: str | None = None, length: int | None = None) -> str:
        fid = f"F{len(self._files) + 1:08d}{secrets.token_hex(1).upper()}"
        mimetype = mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream"
        filetype = name.rsplit(".", 1)[1].lower() if "." in name else "binary"
        self._files[fid] = {"id": fid, "name": name, "title": title or name, "data": data,
                            "size": len(data) if data is not None else (length or 0),
                            "length": length, "mimetype": mimetype, "filetype": filetype,
                            "user": user, "created": int(time.time()), "shares": {}}
        return fid

    def _incoming_files(self, files: list[Any], user: str | None) -> list[dict[str, Any]]:
        objects = []
        for item in files:
            if isinstance(item, dict) and "data" not in item:
                objects.append(item)  # an already-shaped Slack file object
                continue
            if isinstance(item, dict):
                name, data, mime = item["name"], item["data"], item.get("mimetype", "")
            else:
                name, data, mime = item[0], item[1], item[2] if len(item) > 2 else ""
            fid = self._store_file(name, bytes(data), user=user or self.bot_user_id,
                                   mimetype=mime)
            objects.append(self._file_object(fid))
        return objects

    # -- the files.* methods -------------------------------------------------------------------

    async def _get_upload_url(self, p: _P) -> dict[str, Any]:
        filename = str(p.get("filename") or "")
        length = _int(p.get("length"), 0)
        if not filename or length <= 0:
            raise SlackError("invalid_arguments")
        fid = self._store_file(filename, None, user=self.bot_user_id, length=length)
        if p.get("alt_txt"):
            self._files[fid]["alt_txt"] = p["alt_txt"]
        return {"upload_url": f"{self.url}/upload/v1/{fid}", "file_id": fid}

    async def _complete_upload(self, p: _P) -> dict[str, Any]:
        items = p.get("files")
        if not isinstance(items, list) or not items:
            raise SlackError("invalid_arguments")
        targets = [str(p["channel_id"])] if p.get("channel_id") else []
        if p.get("channels"):
            targets += [c.strip() for c in str(p["channels"]).split(",") if c.strip()]
        channels = [self._resolve(c) for c in targets]
        fids = []
        for item in items:
            f = self._files.get(str(item.get("id") if isinstance(item, dict) else ""))
            if f is None or f["data"] is None or f.get("completed"):
                raise SlackError("file_not_found")
            if item.get("title"):
                f["title"] = item["title"]
            fids.append(f["id"])
        thread_ts = str(p["thread_ts"]) if p.get("thread_ts") else None
        comment = str(p.get("initial_comment") or "")
        for channel in channels:
            ts = self._next_ts()
            share = {"ts": ts, "channel_name": channel.get("name", ""),
                     "team_id": self.team_id, "share_user_id": self.bot_user_id}
            if thread_ts:
                share["thread_ts"] = thread_ts
            for fid in fids:
                self._files[fid]["shares"][channel["id"]] = [share]
            message = self._bot_message(comment, None, ts, p)
            message.update(subtype="file_share", upload=True,
                           files=[self._file_object(fid) for fid in fids])
            if thread_ts:
                message["thread_ts"] = thread_ts
            self._messages[(channel["id"], ts)] = message
        for fid in fids:
            f = self._files[fid]
            f["completed"] = True
            self.uploads.append({"file_id": fid, "filename": f["name"], "title": f["title"],
                                 "bytes": f["data"], "length": f["length"],
                                 "channel": channels[0]["id"] if channels else None,
                                 "channels": [c["id"] for c in channels],
                                 "thread_ts": thread_ts, "initial_comment": comment or None})
        return {"files": [self._file_object(fid) for fid in fids]}

    async def _files_info(self, p: _P) -> dict[str, Any]:
        fid = str(p.get("file") or "")
        if fid not in self._files or not self._files[fid].get("completed", True):
            raise SlackError("file_not_found")
        return {"file": self._file_object(fid), "comments": [],
                "response_metadata": {"next_cursor": ""}}

    async def _files_upload_v1(self, p: _P) -> dict[str, Any]:
        raise SlackError("method_deprecated")  # retired by Slack: use files_upload_v2

    # -- upload and download routes ------------------------------------------------------------

    async def _upload(self, request: Request) -> Response:
        """The upload URL of files.getUploadURLExternal: raw bytes or a multipart file."""
        if self._delays["upload"]:
            await asyncio.sleep(self._delays["upload"].popleft())
        if self._fails["upload"]:
            error, status, _ = self._fails["upload"].popleft()
            return PlainTextResponse(error, status_code=status if status != 200 else 500)
        f = self._files.get(request.path_params["file_id"])
        if f is None or f.get("completed"):
            return PlainTextResponse("Not Found", status_code=404)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            async with request.form() as form:
                uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
                data = await uploads[0].read() if uploads else b""
        else:
            data = await request.body()
        f.update(data=data, size=len(data))
        self._notify()
        return PlainTextResponse(f"OK - {len(data)}")

    async def _download(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {self.bot_token}".encode()):
            return Response(status_code=302, headers={"Location": f"{self.url}/sandbox/login"})
        fid = request.path_params["owner"].rsplit("-", 1)[-1]
        f = self._files.get(fid)
        if f is None or f["data"] is None:
            return PlainTextResponse("File not found", status_code=404)
        return Response(f["data"], media_type=f["mimetype"])

    async def _login_page(self, request: Request) -> Response:
        return HTMLResponse(f"<!DOCTYPE html><html><head><title>Slack</title></head><body>"
                            f"<h1>Sign in to {self.team_name}</h1></body></html>")
