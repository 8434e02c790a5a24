"""SmartPDF: POST /v2/smartpdf/invoiceUpload hands out a pre-signed URL; the PDF is PUT there."""

from __future__ import annotations

import secrets
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from basware_sandbox import schemas
from basware_sandbox.http_common import AuthFailure, BadRequest, authenticate, read_json, sandbox
from basware_sandbox.records import Upload
from basware_sandbox.s3 import presigned_query

SCOPE = "importDocuments.write"
_AUTH_ANSWERS = {
    AuthFailure.MISSING: (401, "No authentication method provided."),
    AuthFailure.INVALID: (401, "Invalid JWT token."),
    AuthFailure.BOTH: (400, "Both JWT token and Basic Auth credentials provided."),
    AuthFailure.SCOPE: (403, "Forbidden"),
}


async def request_upload(request: Request) -> Response:
    caller = authenticate(request, SCOPE)
    if isinstance(caller, AuthFailure):
        status, reason = _AUTH_ANSWERS[caller]
        return JSONResponse({"detail": reason}, status_code=status)
    state = sandbox(request)
    try:
        body = await read_json(request, state.config.max_request_bytes)
    except BadRequest as exc:
        return JSONResponse(
            {"detail": [{"loc": ["body"], "msg": exc.message, "type": "value_error"}]}, 422
        )
    found = schemas.problems("smartpdf", "UploadRequest", body)
    if found:
        problems = [
            {
                "loc": ["body", *p.path.split("/")] if p.path else ["body"],
                "msg": p.message,
                "type": "value_error",
            }
            for p in found
        ]
        return JSONResponse({"detail": problems}, status_code=422)
    lifetime = state.config.upload_url_lifetime_seconds
    upload = Upload(
        bum_id=str(uuid.uuid4()),
        receiving_email=body["receivingEmailAddress"],
        notification_email=body["notificationEmailAddress"],
        signature=secrets.token_hex(32),
        expires_at=state.clock.now() + lifetime,
    )
    caller.tenant.uploads[upload.bum_id] = upload
    base = str(request.base_url).rstrip("/")
    url = f"{base}/_s3/uploads/{upload.bum_id}?{presigned_query(upload.signature, lifetime)}"
    return JSONResponse({"uploadUrl": url, "bumId": upload.bum_id})


ROUTES = [Route("/v2/smartpdf/invoiceUpload", request_upload, methods=["POST"])]
